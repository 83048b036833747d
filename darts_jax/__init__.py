"""darts_jax: partially-connected differentiable architecture search for spoofing detection."""

__version__ = "0.1.0"
