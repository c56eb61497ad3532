"""genlab: latent-variable generative models from five papers, built, run and recorded one way.

The library is plain PyTorch and never imports Sacred; the Sacred glue lives in ``scripts/``.
"""

__version__ = "0.1.0"
