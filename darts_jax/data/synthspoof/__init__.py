"""SynthSpoof, the built-in corpus in the ASVspoof 2019 LA layout: `corpus` writes it (make_corpus);
`speech` renders bona fide speech, `attacks` the 19 spoofing systems, `channel` the recording chain,
`spectral` the NumPy signal tools they share."""
