"""SynthAV, the built-in audio-visual deepfake corpus (`corpus`, its video in `render`), and the in-memory
loader of the frozen backbones' cached features (`features`)."""
