"""The spoofing layer: ASVspoof metrics and score files, corpus pipelines, reports, model folders.

Modules: `metrics` (official EER, min t-DCF), `scores` (score files), `pipeline` (runs on a corpus
folder, `--corpus` readers), `export` (model folders, predict), `report`, `side_cues` (shortcut check).
"""
