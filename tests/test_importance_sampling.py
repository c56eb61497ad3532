"""Importance-sampled log p(x) (genlab.metrics.importance_sampling), the NLL of MIM's images (docs/mim.md §6.3).

Known answers from a linear-Gaussian VAE, p(z) = N(0, I_d), p(x|z) = N(Wz + b, s^2 I_D), whose
marginal N(b, W W^T + s^2 I) and posterior are closed form: with the exact posterior as q every
log weight is log p(x), so any S gives log p(x); with a wrong q the S = 1 estimate falls short by
KL(q || posterior) on average (Jensen), and the S = 5000 estimate is within a few hundredths of a nat.
Then the streaming logsumexp against ``torch.logsumexp`` over all S, the chunk sizes, the input
checks and the batch stream of :func:`importance_nll`.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import MultivariateNormal, Normal

from genlab.metrics.importance_sampling import importance_log_likelihood, importance_nll, log_weights_of

D_Z, D_X, SIGMA = 2, 5, 0.5


class LinearGaussianVAE:
    """p(z) = N(0, I), p(x|z) = N(Wz + b, sigma^2 I), q(z|x) = N(A (x - b) + shift, scale^2 * posterior cov)."""

    def __init__(self, seed: int = 0, shift: float = 0.0, scale: float = 1.0):
        g = torch.Generator().manual_seed(seed)
        self.W = torch.randn(D_X, D_Z, generator=g, dtype=torch.float64)
        self.b = torch.randn(D_X, generator=g, dtype=torch.float64)
        precision = torch.eye(D_Z, dtype=torch.float64) + self.W.T @ self.W / SIGMA**2
        self.post_cov = torch.linalg.inv(precision)
        self.post_cov = (self.post_cov + self.post_cov.T) / 2
        self.chol = torch.linalg.cholesky(self.post_cov)
        self.gain = self.post_cov @ self.W.T / SIGMA**2
        # the shift is `shift` posterior standard deviations along every whitened axis
        self.offset = self.chol @ torch.full((D_Z,), float(shift), dtype=torch.float64)
        self.scale = scale

    def marginal(self) -> MultivariateNormal:
        cov = self.W @ self.W.T + SIGMA**2 * torch.eye(D_X, dtype=torch.float64)
        return MultivariateNormal(self.b, covariance_matrix=cov)

    def sample_x(self, n: int, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, D_Z, generator=g, dtype=torch.float64)
        return z @ self.W.T + self.b + SIGMA * torch.randn(n, D_X, generator=g, dtype=torch.float64)

    def q(self, x: torch.Tensor) -> MultivariateNormal:
        mean = (x - self.b) @ self.gain.T + self.offset
        return MultivariateNormal(mean, scale_tril=self.scale * self.chol)

    def kl_q_posterior(self) -> float:
        """KL(q || posterior), the same for every x: the expected gap of the one-sample estimate."""
        s2 = self.scale**2
        mahalanobis = float(self.offset @ torch.linalg.solve(self.post_cov, self.offset))
        return 0.5 * (D_Z * (s2 - 1.0 - math.log(s2)) + mahalanobis)

    def weight_variance(self) -> float:
        """Var_q[p(z|x) / q(z|x)], the same for every x: the estimate's error is about sqrt(this / S).

        In whitened posterior coordinates q is N(shift, scale^2) per axis, and per axis
        E_q[(p/q)^2] = integral N(u; 0, 1)^2 / N(u; m, s^2) du = s / sqrt(2a) exp(m^2 / (4 a s^4) + m^2 / (2 s^2)),
        a = 1 - 1 / (2 s^2) (finite for s^2 > 1/2): 1.6004 per axis at m = 1, s = 1.5.
        """
        s2 = self.scale**2
        a = 1.0 - 1.0 / (2.0 * s2)
        m2 = float(torch.linalg.solve_triangular(self.chol, self.offset[:, None], upper=False).square().mean())
        per_axis = self.scale / math.sqrt(2.0 * a) * math.exp(m2 / (4.0 * a * s2**2) + m2 / (2.0 * s2))
        return per_axis**D_Z - 1.0

    def log_importance_weights(self, x: torch.Tensor, samples: int) -> torch.Tensor:
        q = self.q(x)
        z = q.sample((samples,))  # (S, B, d)
        log_prior = Normal(0.0, 1.0).log_prob(z).sum(-1)
        log_lik = Normal(z @ self.W.T + self.b, SIGMA).log_prob(x).sum(-1)
        return log_prior + log_lik - q.log_prob(z)


# --- known answers -------------------------------------------------------------------------------


@pytest.mark.parametrize("samples", [1, 2, 100, 5000])
def test_exact_posterior_gives_the_closed_form_with_any_s(samples):
    model = LinearGaussianVAE()
    x = model.sample_x(64, seed=1)
    truth = model.marginal().log_prob(x)
    torch.manual_seed(0)
    est = importance_log_likelihood(log_weights_of(model), x, samples=samples, chunk=100)
    assert est.shape == (64,) and est.dtype == torch.float64
    assert torch.allclose(est, truth, atol=1e-4, rtol=0)


def test_wrong_posterior_converges_to_the_closed_form():
    model = LinearGaussianVAE(shift=1.0, scale=1.5)
    x = model.sample_x(64, seed=2)
    truth = model.marginal().log_prob(x)
    torch.manual_seed(0)
    est = importance_log_likelihood(log_weights_of(model), x, samples=5000, chunk=100)
    err = est - truth
    # delta method: err ~ N(-V / 2S, V / S) per example, V the weights' relative variance (1.561 here)
    se = math.sqrt(model.weight_variance() / 5000)
    assert 0.017 < se < 0.018
    assert float(err.abs().max()) < 5 * se  # about 0.09 nats
    assert abs(float(err.mean())) < 4 * se / math.sqrt(len(err))  # about 0.009 nats
    assert 0.7 * se < float(err.std()) < 1.3 * se


def test_one_sample_is_the_elbo_and_falls_short_by_the_kl():
    model = LinearGaussianVAE(shift=1.0, scale=1.5)
    x = model.sample_x(2000, seed=3)
    truth = model.marginal().log_prob(x)
    torch.manual_seed(0)
    gap = truth - importance_log_likelihood(log_weights_of(model), x, samples=1)
    kl = model.kl_q_posterior()  # 0.5 * (2 * (2.25 - 1 - log 2.25) + 2) = 1.439...
    assert kl == pytest.approx(0.5 * (2 * (2.25 - 1 - math.log(2.25)) + 2))
    standard_error = float(gap.std()) / math.sqrt(len(gap))
    assert abs(float(gap.mean()) - kl) < 4 * standard_error


def test_bias_shrinks_as_s_grows():
    model = LinearGaussianVAE(shift=1.0, scale=1.5)
    x = model.sample_x(256, seed=4)
    truth = model.marginal().log_prob(x)
    errors = {}
    for s in (1, 10, 5000):
        torch.manual_seed(s)
        errors[s] = float((truth - importance_log_likelihood(log_weights_of(model), x, samples=s)).mean())
    assert errors[1] > errors[10] > errors[5000] >= -0.005
    assert errors[10] > 0.02  # still visibly biased low at S = 10
    assert errors[5000] < 0.005


# --- the streaming logsumexp ---------------------------------------------------------------------


class TableWeights:
    """Deterministic log weights: sample s of example b is table[s, b], whatever the chunking."""

    def __init__(self, table: torch.Tensor):
        self.table = table
        self.calls: list[int] = []
        self.used = 0

    def __call__(self, x: torch.Tensor, n: int) -> torch.Tensor:
        assert x.shape[0] == self.table.shape[1]
        self.calls.append(n)
        out = self.table[self.used : self.used + n]
        self.used += n
        return out


@pytest.mark.parametrize("chunk", [1, 7, 100, 5000, 10_000])
def test_streaming_equals_logsumexp_over_all_samples(chunk):
    g = torch.Generator().manual_seed(5)
    samples, batch = 5000, 6
    table = 30.0 * torch.randn(samples, batch, generator=g, dtype=torch.float64) - 1e4  # far beyond exp's range
    weights = TableWeights(table)
    est = importance_log_likelihood(weights, torch.zeros(batch, 3), samples=samples, chunk=chunk)
    expected = torch.logsumexp(table, dim=0) - math.log(samples)
    assert torch.allclose(est, expected, atol=1e-9, rtol=0)
    assert sum(weights.calls) == samples and max(weights.calls) == min(chunk, samples)


def test_samples_not_a_multiple_of_chunk():
    table = torch.randn(250, 4, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    weights = TableWeights(table)
    est = importance_log_likelihood(weights, torch.zeros(4, 1), samples=250, chunk=100)
    assert weights.calls == [100, 100, 50]
    assert torch.allclose(est, torch.logsumexp(table, 0) - math.log(250), atol=1e-12, rtol=0)


def test_chunking_does_not_change_the_answer():
    table = torch.randn(5000, 3, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    answers = [
        importance_log_likelihood(TableWeights(table), torch.zeros(3, 1), samples=5000, chunk=c) for c in (100, 7, 5000)
    ]
    for a in answers[1:]:
        assert torch.allclose(a, answers[0], atol=1e-12, rtol=0)


def test_no_grad_and_device():
    w = torch.randn(10, 2, requires_grad=True)
    est = importance_log_likelihood(lambda x, n: w[:n] * 1.0, torch.zeros(2, 1), samples=10, chunk=10)
    assert not est.requires_grad
    assert est.device == torch.zeros(2, 1).device


def test_invalid_arguments_are_refused():
    weights = lambda x, n: torch.zeros(n, len(x))  # noqa: E731
    x = torch.zeros(3, 1)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="samples"):
            importance_log_likelihood(weights, x, samples=bad)
        with pytest.raises(ValueError, match="chunk"):
            importance_log_likelihood(weights, x, chunk=bad)
    with pytest.raises(ValueError, match=r"\(5, 3\)"):
        importance_log_likelihood(lambda x, n: torch.zeros(len(x), n), x, samples=5, chunk=5)
    with pytest.raises(ValueError, match="max_examples"):
        importance_nll(weights, [{"x": x}], max_examples=0)
    with pytest.raises(ValueError, match="no examples"):
        importance_nll(weights, [])
    with pytest.raises(TypeError, match="log_importance_weights"):
        log_weights_of(object())


# --- importance_nll ------------------------------------------------------------------------------


def constant_weights(x: torch.Tensor, n: int) -> torch.Tensor:
    """Every sample's log weight is -sum(x), so log p(x) = -sum(x) exactly."""
    return (-x.sum(1)).expand(n, len(x))


def test_importance_nll_over_batches():
    xs = [torch.arange(5.0)[:, None] + 5 * i for i in range(3)]
    out = importance_nll(constant_weights, [{"x": x, "y": None} for x in xs], samples=13, chunk=4)
    values = torch.arange(15.0)
    assert out["examples"] == 15
    assert out["log_px"].device.type == "cpu"
    assert torch.allclose(out["log_px"], -values)
    assert out["nll"] == pytest.approx(7.0)
    assert out["nll_std"] == pytest.approx(float(values.std(correction=0)))


def test_max_examples_truncates_and_stops_reading():
    seen = []

    def stream():
        for i in range(4):
            seen.append(i)
            yield {"x": torch.arange(5.0)[:, None] + 5 * i}

    out = importance_nll(constant_weights, stream(), samples=3, chunk=2, max_examples=7)
    assert out["examples"] == 7 and len(out["log_px"]) == 7
    assert torch.allclose(out["log_px"], -torch.arange(7.0))
    assert seen == [0, 1]
    out = importance_nll(constant_weights, stream(), samples=3, max_examples=100)
    assert out["examples"] == 20


def test_importance_nll_matches_the_closed_form():
    model = LinearGaussianVAE()
    x = model.sample_x(40, seed=8)
    truth = model.marginal().log_prob(x)
    torch.manual_seed(0)
    out = importance_nll(log_weights_of(model), [{"x": x[:16]}, {"x": x[16:]}], samples=3, chunk=2, max_examples=30)
    assert out["examples"] == 30
    assert torch.allclose(out["log_px"], truth[:30], atol=1e-4, rtol=0)
    assert out["nll"] == pytest.approx(-float(truth[:30].mean()), abs=1e-4)
    assert out["nll_std"] == pytest.approx(float(truth[:30].std(correction=0)), abs=1e-4)
