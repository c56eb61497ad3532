"""The identifiable VAE (iVAE) of the nonlinear-ICA simulations: Khemakhem, Kingma, Monti & Hyvärinen,
"Variational Autoencoders and Nonlinear ICA: A Unifying Framework", AISTATS 2020, as the ICE-BeeM
paper (Khemakhem et al., NeurIPS 2020) runs it as a baseline (docs/icebeem.md §3d, §4c).

With an auxiliary variable u (the one-hot segment label):

    prior        p(z | u)    = N(0, diag exp(lambda(u)))             lambda: u -> R^d
    decoder      p(x | z)    = N(f(z), decoder_var * I)              decoder_var fixed (0.01)
    encoder      q(z | x, u) = N(g(x, u), diag exp(logv(x, u)))      g, logv: [x, u] -> R^d

Every network is an MLP of ``n_layers`` (3) Linear layers, hidden width ``hidden_dim`` (2 x the
data dimension), LeakyReLU(0.1) between layers, Xavier-uniform weights and PyTorch's default
(uniform +-1/sqrt(fan_in)) biases, which the original did not re-initialise.

How it is computed (the networks are tiny, so the cost of a training step is the number of tensor
operations, not their size):

- g, logv and lambda are three separate MLPs with their own parameters, but they are evaluated as
  one MLP whose weights are block-diagonal (:class:`ParallelMLPs`): one matrix product per layer
  instead of three. Each layer's weight is multiplied by a fixed 0/1 mask before use, so the
  off-block entries (stored as zeros) act as zero and get exactly zero gradient: the function, the
  gradients of the real weights and the Adam updates are those of three separate networks.
  lambda reads only the u columns of [x, u] (its mask is zero on the x columns).
- Activations are feature-major, (features, batch), inside the model: the matrix products are then
  W @ h with the batch as the wide dimension, which MKL runs about twice as fast as h @ W^T on
  these skinny shapes (measured, 256 x 10 x 10, one thread). Everything the model returns is
  batch-major, (batch, features).
- The single-sample ELBO is one expression (``neg_elbo``): with z = mu + sigma * eps,
  log q(z | x, u) = -1/2 sum(logv + eps^2) - d/2 log 2 pi exactly, so (z - mu)^2 / v is never
  formed, and the two log 2 pi terms of the prior and the posterior cancel.

Written here rather than taken from a library: no maintained package has the iVAE, and the
block-diagonal evaluation is what makes it fast.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.models.registry import register_model


class ParallelMLPs(nn.Module):
    """k MLPs of one shape on one shared input, evaluated together through block-diagonal weights.

    Network j reads the input features ``inputs[j] = (start, stop)`` and has ``n_layers`` Linear
    layers ``fan_in -> hidden -> ... -> hidden -> out`` with a LeakyReLU(``slope``) between layers.
    Layer l's parameters are one ``weight_l`` of shape (k * out_l, k * in_l) (the first layer: (k *
    hidden, in_features)) whose block j is network j's weight, and one ``bias_l`` of shape
    (k * out_l, 1); everything outside the blocks is zero and is kept zero by ``mask_l`` (a buffer,
    not saved; None for a single network on all the inputs), so it neither contributes nor learns.
    ``network(j)`` gives network j's own (weight, bias) pairs.

    ``forward`` takes and returns feature-major tensors: (in_features, batch) -> (k * out, batch),
    network j's outputs in rows ``j * out : (j + 1) * out``.
    """

    def __init__(self, in_features: int, inputs: Sequence[tuple[int, int]], hidden: int, out: int, n_layers: int = 3,
                 slope: float = 0.1):  # fmt: skip
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"an MLP needs at least one layer, got n_layers={n_layers}")
        for start, stop in inputs:
            if not 0 <= start < stop <= in_features:
                raise ValueError(f"input columns [{start}, {stop}) outside the {in_features} input features")
        self.in_features, self.inputs, self.k = int(in_features), [tuple(map(int, r)) for r in inputs], len(inputs)
        self.hidden, self.out, self.n_layers, self.slope = int(hidden), int(out), int(n_layers), float(slope)
        widths = [self.hidden] * (self.n_layers - 1) + [self.out]
        self._names = [(f"weight_{layer}", f"bias_{layer}", f"mask_{layer}") for layer in range(self.n_layers)]
        for layer, width in enumerate(widths):
            weight = torch.zeros(self.k * width, self.k * self.hidden if layer else self.in_features)
            bias = torch.zeros(self.k * width, 1)
            mask = torch.zeros_like(weight)
            for j, (start, stop) in enumerate(self.inputs):
                rows = slice(j * width, (j + 1) * width)
                cols = slice(j * self.hidden, (j + 1) * self.hidden) if layer else slice(start, stop)
                block = torch.empty(width, cols.stop - cols.start)
                nn.init.xavier_uniform_(block)  # per network, with that network's own fans
                bound = 1.0 / math.sqrt(block.shape[1])  # nn.Linear's default bias initialisation
                weight[rows, cols] = block
                bias[rows] = torch.empty(width, 1).uniform_(-bound, bound)
                mask[rows, cols] = 1.0
            self.register_parameter(f"weight_{layer}", nn.Parameter(weight))
            self.register_parameter(f"bias_{layer}", nn.Parameter(bias))
            # one network on all the inputs has nothing to mask; the mask is not saved (it follows from the shapes)
            self.register_buffer(f"mask_{layer}", None if bool(mask.all()) else mask, persistent=False)

    def forward(self, h: Tensor) -> Tensor:
        # straight from the registries: Module.__getattr__ costs more than these tiny layers' products
        params, buffers, last = self._parameters, self._buffers, self.n_layers - 1
        for layer, (weight, bias, mask) in enumerate(self._names):
            weight, mask = params[weight], buffers[mask]
            if mask is not None:
                weight = weight * mask
            h = torch.addmm(params[bias], weight, h)
            if layer < last:
                # in place on the product's fresh output; autograd's in-place LeakyReLU needs slope > 0
                h = F.leaky_relu_(h, self.slope) if self.slope > 0 else F.leaky_relu(h, self.slope)
        return h

    def network(self, j: int) -> list[tuple[Tensor, Tensor]]:
        """Network j's own weights and biases, layer by layer, as (out, in) and (out,) views."""
        pairs = []
        for layer in range(self.n_layers):
            width = self.hidden if layer < self.n_layers - 1 else self.out
            rows = slice(j * width, (j + 1) * width)
            cols = slice(j * self.hidden, (j + 1) * self.hidden) if layer else slice(*self.inputs[j])
            pairs.append((getattr(self, f"weight_{layer}")[rows, cols], getattr(self, f"bias_{layer}")[rows, 0]))
        return pairs

    def extra_repr(self) -> str:
        return (f"{self.k} MLP(s) on inputs {self.inputs} of {self.in_features}, {self.n_layers} layers, "
                f"hidden {self.hidden}, out {self.out}, LeakyReLU({self.slope})")  # fmt: skip


class IVAE(nn.Module):
    """The iVAE (see the module docstring). ``heads`` evaluates the encoder mean g, the encoder
    log-variance logv and the prior log-variance lambda (networks 0, 1, 2); ``decoder`` is f.

    Inputs are batch-major: x (B, data_dim), u (B, n_segments), one-hot for the simulations.
    """

    source_target = "s"  # the latents estimate the sources themselves (genlab.metrics.mcc.source_target)
    intended_readout = "mean"  # the encoder mean of the final model, chosen without the true sources
    paper_readouts = ("sample", "mean", "mean_ica")  # the paper's number: the best of these (docs/icebeem.md §7, §10.2)

    def __init__(self, data_dim: int, n_segments: int, latent_dim: int, hidden_dim: int, n_layers: int = 3,
                 slope: float = 0.1, decoder_var: float = 0.01):  # fmt: skip
        super().__init__()
        if not decoder_var > 0:
            raise ValueError(f"the decoder variance must be positive, got {decoder_var!r}")
        self.data_dim, self.n_segments, self.latent_dim = int(data_dim), int(n_segments), int(latent_dim)
        self.decoder_var = float(decoder_var)
        width = self.data_dim + self.n_segments
        inputs = [(0, width), (0, width), (self.data_dim, width)]  # g(x, u), logv(x, u), lambda(u)
        self.heads = ParallelMLPs(width, inputs, hidden_dim, self.latent_dim, n_layers, slope)
        self.decoder = ParallelMLPs(self.latent_dim, [(0, self.latent_dim)], hidden_dim, self.data_dim, n_layers, slope)
        # -ELBO's constant: d_x/2 log(2 pi decoder_var) from log p(x|z); the prior's and the posterior's log 2 pi cancel
        self._log_norm = 0.5 * self.data_dim * math.log(2 * math.pi * self.decoder_var)

    # --- feature-major internals ------------------------------------------------------------------

    def _heads(self, x: Tensor, u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """g(x, u), logv(x, u), lambda(u), each (latent_dim, B)."""
        return self.heads(torch.cat([x, u], 1).t()).split(self.latent_dim)

    def _noise(self, like: Tensor, eps: Tensor | None, generator: torch.Generator | None) -> Tensor:
        if eps is not None:
            return eps.t()
        if generator is None:
            return torch.randn_like(like)
        return torch.randn(like.shape, generator=generator, device=like.device, dtype=like.dtype)

    # --- the model, batch-major -------------------------------------------------------------------

    def encode(self, x: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
        """The posterior's mean g(x, u) and log-variance logv(x, u), each (B, latent_dim)."""
        mean, logvar, _ = self._heads(x, u)
        return mean.t(), logvar.t()

    def prior_logvar(self, u: Tensor) -> Tensor:
        """lambda(u), the log-variances of p(z | u), (B, latent_dim)."""
        x = u.new_zeros(len(u), self.data_dim)  # read by the other two heads only
        return self._heads(x, u)[2].t()

    def decode(self, z: Tensor) -> Tensor:
        """f(z), the mean of p(x | z), (B, data_dim)."""
        return self.decoder(z.t()).t()

    def forward(self, x: Tensor, u: Tensor, eps: Tensor | None = None) -> dict[str, Tensor]:
        """Posterior mean and log-variance, prior log-variance, one sample z = mean + exp(logvar / 2) eps
        (``eps`` (B, latent_dim) given or drawn) and its decoding f(z); all (B, .)."""
        mean, logvar, prior_logvar = self._heads(x, u)
        z = torch.addcmul(mean, (0.5 * logvar).exp(), self._noise(mean, eps, None))
        return {"mean": mean.t(), "logvar": logvar.t(), "prior_logvar": prior_logvar.t(), "z": z.t(),
                "recon": self.decoder(z).t()}  # fmt: skip

    @torch.no_grad()
    def readouts(self, x: Tensor, u: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """The recovered sources (B, latent_dim): the posterior mean, and one reparameterised sample
        (the original's iVAE score is the best MCC of the two and of FastICA of the mean, docs/icebeem.md §7)."""
        mean, logvar, _ = self._heads(x, u)
        z = torch.addcmul(mean, (0.5 * logvar).exp(), self._noise(mean, None, generator))
        return {"mean": mean.t().contiguous(), "sample": z.t().contiguous()}

    # --- the ELBO ---------------------------------------------------------------------------------

    def neg_elbo(self, x: Tensor, u: Tensor, eps: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """-ELBO(x, u) of one reparameterised sample, summed over dimensions, averaged over the batch
        (docs/icebeem.md §4c): with z = mu + sigma eps, per example

            -ELBO = |x - f(z)|^2 / (2 decoder_var) + 1/2 sum_j (lambda_j - logv_j + z_j^2 exp(-lambda_j))
                    - 1/2 |eps|^2 + d_x/2 log(2 pi decoder_var),

        i.e. -log N(x; f(z), decoder_var I) - log N(z; 0, diag exp lambda) + log N(z; mu, diag exp logv).
        One expression, for speed (the terms one by one: ``elbo_terms``)."""
        mean, logvar, prior_logvar = self._heads(x, u)
        eps = self._noise(mean, eps, generator)
        z = torch.addcmul(mean, (0.5 * logvar).exp(), eps)
        recon = F.mse_loss(self.decoder(z), x.t(), reduction="sum")
        latent = torch.addcmul(prior_logvar - logvar, z * z, (-prior_logvar).exp()).sum()
        half_mean = 0.5 / len(x)
        constant = self._log_norm - half_mean * torch.dot(eps.reshape(-1), eps.reshape(-1))  # no gradient: eps is fixed
        return torch.add(torch.add(constant, latent, alpha=half_mean), recon, alpha=half_mean / self.decoder_var)

    def elbo_terms(self, x: Tensor, u: Tensor, eps: Tensor | None = None,
                   generator: torch.Generator | None = None) -> dict[str, Tensor]:  # fmt: skip
        """Batch means of log p(x | z), log p(z | u) and log q(z | x, u) at one reparameterised sample
        z, and their sum, the ELBO (``neg_elbo`` is minus the latter, computed in one expression)."""
        mean, logvar, prior_logvar = self._heads(x, u)
        eps = self._noise(mean, eps, generator)
        z = torch.addcmul(mean, (0.5 * logvar).exp(), eps)
        log2pi = math.log(2 * math.pi)
        log_px = -0.5 * ((x.t() - self.decoder(z)).pow(2).sum(0) / self.decoder_var) - self._log_norm
        log_pz = -0.5 * (prior_logvar + z * z * (-prior_logvar).exp() + log2pi).sum(0)
        log_qz = -0.5 * (logvar + eps * eps + log2pi).sum(0)
        terms = {"log_px": log_px.mean(), "log_pz": log_pz.mean(), "log_qz": log_qz.mean()}
        terms["elbo"] = terms["log_px"] + terms["log_pz"] - terms["log_qz"]
        return terms


@register_model("ivae")
def build_ivae(
    latent_size: int | None = None,
    hidden_dim: int | None = None,
    n_layers: int = 3,
    slope: float = 0.1,
    decoder_var: float = 0.01,
    *,
    input_shape: Sequence[int],
    n_segments: int,
    latent_dim: int | None = None,
) -> IVAE:
    """The iVAE of the ICE-BeeM simulations: ``latent_size`` None: the data's number of sources
    (``latent_dim``, else its dimension), ``hidden_dim`` None: 2 x the data's dimension (the
    original's ``hidden_dim=data_dim * 2``), 3-layer MLPs, LeakyReLU 0.1, decoder variance 0.01."""
    data_dim = int(input_shape[0])
    latent = int(latent_size if latent_size is not None else (latent_dim if latent_dim is not None else data_dim))
    hidden = int(hidden_dim if hidden_dim is not None else 2 * data_dim)
    return IVAE(data_dim, int(n_segments), latent, hidden, int(n_layers), float(slope), float(decoder_var))


__all__ = ["IVAE", "ParallelMLPs", "build_ivae"]
