"""Building blocks shared by search spaces: PyTorch-faithful layers and initialisation (`layers`),
and the spectral front ends computed inside the compiled step (`frontends`)."""
