"""The flow contrastive estimation value function and classification accuracy (docs/fce.md §3.1, §3.3).

FCE is NCE with a flow q_alpha as the noise distribution. The EBM p_theta and the flow play a
two-player game on V: the EBM step minimises -V (logistic regression of data against flow samples),
the flow step minimises +V. Reduction: mean over each batch (data and noise separately), summed
(design rule 5; a 2D point's log density already sums over its dimensions).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def _check_pairs(log_p_data: Tensor, log_q_data: Tensor, log_p_noise: Tensor, log_q_noise: Tensor) -> None:
    # (B,) against (B, 1) would broadcast to (B, B) and silently average the wrong pairs.
    if log_p_data.shape != log_q_data.shape or log_p_noise.shape != log_q_noise.shape:
        raise ValueError(
            "log densities must pair up elementwise: got data "
            f"{tuple(log_p_data.shape)} vs {tuple(log_q_data.shape)}, noise "
            f"{tuple(log_p_noise.shape)} vs {tuple(log_q_noise.shape)}"
        )


def fce_value(log_p_data: Tensor, log_q_data: Tensor, log_p_noise: Tensor, log_q_noise: Tensor) -> Tensor:
    """V-hat(alpha, theta) of docs/fce.md §3.1, a scalar:

        V = mean_i [log p(x_i) - LSE(log p(x_i), log q(x_i))]
          + mean_j [log q(x~_j) - LSE(log p(x~_j), log q(x~_j))]
          = mean_i log sigma(log p - log q)(x_i) + mean_j log sigma(log q - log p)(x~_j),

    with x_i the data batch and x~_j the flow samples (noise/data ratio 1 in the original, but the
    two batches may differ in size). ``F.logsigmoid`` computes each term with the same numerical
    stability as the two-element log-sum-exp, in one kernel.

    The EBM step minimises -V and the flow step +V. For a fixed flow the optimal EBM is p_data
    (NCE consistency); with p_theta = p_data, V = 2 JSD(p_data || q) - log 4, so the flow step
    minimises the Jensen-Shannon divergence. At equilibrium p = q = p_data every term is log 1/2,
    so V = -log 4 and the logged -V = log 4 ~ 1.386. V <= 0 always.
    """
    _check_pairs(log_p_data, log_q_data, log_p_noise, log_q_noise)
    return F.logsigmoid(log_p_data - log_q_data).mean() + F.logsigmoid(log_q_noise - log_p_noise).mean()


def fce_accuracy(log_p_data: Tensor, log_q_data: Tensor, log_p_noise: Tensor, log_q_noise: Tensor) -> Tensor:
    """Fraction of data and noise points the EBM-vs-flow classifier gets right (docs/fce.md §3.3), a scalar.

    A data point counts as correct when log p - log q >= 0 and a flow sample when log q - log p > 0
    (strict), the original's tie rule: when p >> q everywhere (the EBM at initialisation) or p == q,
    exactly the data half is right and the accuracy is 0.5 with equal batch sizes. The original
    tests sigma(.) >= 1/2 and sigma(.) > 1/2; comparing the log ratio with 0 is the same except for
    |log ratio| below float32 rounding of sigma near 1/2 (about 6e-8), which never matters.
    Divided by n_data + n_noise; carries no gradient.
    """
    _check_pairs(log_p_data, log_q_data, log_p_noise, log_q_noise)
    correct = (log_p_data >= log_q_data).sum() + (log_q_noise > log_p_noise).sum()
    return correct / (log_p_data.numel() + log_p_noise.numel())
