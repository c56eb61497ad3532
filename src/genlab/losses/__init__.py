"""Pure loss functions. Convention (design rule 5): sum over data and latent dimensions, mean over
the batch, so that beta, gamma and C carry the papers' meaning."""

from genlab.losses.kl import gaussian_kl
from genlab.losses.likelihoods import bernoulli_nll
from genlab.losses.total_correlation import permute_dims

__all__ = ["bernoulli_nll", "gaussian_kl", "permute_dims"]
