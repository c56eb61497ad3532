"""Pure loss functions. Convention (design rule 5): sum over data and latent dimensions, mean over
the batch, so that beta, gamma and C carry the papers' meaning."""

from genlab.losses.kl import gaussian_kl
from genlab.losses.likelihoods import bernoulli_nll
from genlab.losses.nce import fce_accuracy, fce_value
from genlab.losses.total_correlation import permute_dims

__all__ = ["bernoulli_nll", "fce_accuracy", "fce_value", "gaussian_kl", "permute_dims"]
