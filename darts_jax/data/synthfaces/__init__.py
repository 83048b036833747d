"""Synthetic face corpora: presentation attacks with true depth, and face manipulations.

`faces.lfw_faces` gives the real face crops shipped inside scikit-image; the renderer and the corpora
built on it live beside it.
"""
