"""The spoofing layer: ASVspoof metrics and score files, corpus pipelines, reports, model folders.

Modules: `metrics` (official EER, min t-DCF, ASVspoof 5 minDCF / actDCF / Cllr), `scores` (score files),
`pipeline` (runs on a corpus folder, `--corpus` readers, export), `export` (model folders), `portable`
(StableHLO folders), `calibration` (score -> LLR), `fusion`, `predict` (files a user has),
`torch_checkpoint` and `pytorch_import` (the authors' PyTorch checkpoints), `report`, `audit` (trivial-cue
audit of a corpus).
"""
