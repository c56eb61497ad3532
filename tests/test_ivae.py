"""The iVAE of the ICE-BeeM simulations (genlab.models.ivae, genlab.objectives.ivae; docs/icebeem.md §3d, §4c)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.distributions import Normal

from genlab.errors import ConfigError
from genlab.models import build_model
from genlab.models.ivae import IVAE, ParallelMLPs
from genlab.objectives import build_objective
from genlab.training.engines import fit
from genlab.training.optimizers import OptimizerFactory
from genlab.training.progress import Progress
from genlab.training.schedulers import build_schedulers

D, K = 5, 20
INPUTS = {"input_shape": [D], "n_segments": K, "latent_dim": D}


@pytest.fixture(autouse=True)
def one_thread():
    """Networks this small gain nothing from a second thread, and on a busy machine every matrix
    product then waits for it (milliseconds a step): run these tests on one, as the benchmark shows."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make(options=None, inputs=INPUTS, seed=0) -> IVAE:
    torch.manual_seed(seed)
    return build_model("ivae", dict(options or {}), inputs)


def segment_batch(n=64, d=D, k=K, seed=0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    u = nn.functional.one_hot(torch.randint(k, (n,), generator=g), k).float()
    s = torch.randn(n, d, generator=g)
    return {"x": torch.randn(n, d, generator=g), "u": u, "s": s}


def layers(mlps: ParallelMLPs) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each layer's (weight, mask)."""
    return [(getattr(mlps, f"weight_{i}"), getattr(mlps, f"mask_{i}")) for i in range(mlps.n_layers)]


def reference_mlp(pairs, slope=0.1) -> nn.Sequential:
    """A plain nn.Sequential MLP holding copies of one network's weights."""
    layers = []
    for i, (w, b) in enumerate(pairs):
        linear = nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            linear.weight.copy_(w)
            linear.bias.copy_(b)
        layers += [linear] if i == len(pairs) - 1 else [linear, nn.LeakyReLU(slope)]
    return nn.Sequential(*layers)


# --- building --------------------------------------------------------------------------------------


def test_builds_through_the_registry_with_the_papers_sizes():
    model = make()
    assert isinstance(model, IVAE) and model.source_target == "s"
    assert (model.data_dim, model.n_segments, model.latent_dim, model.decoder_var) == (D, K, D, 0.01)
    assert model.heads.hidden == model.decoder.hidden == 2 * D and model.heads.n_layers == 3
    assert model.heads.k == 3 and model.decoder.k == 1
    # latent size: the option, else the data's latent_dim, else its dimension
    assert make({"latent_size": 3}).latent_dim == 3
    assert make(inputs={"input_shape": [4], "n_segments": 2}).latent_dim == 4
    with pytest.raises(ConfigError, match="n_segments"):
        build_model("ivae", {}, {"input_shape": [D]})
    with pytest.raises(ConfigError, match="no option"):
        build_model("ivae", {"hidden": 3}, INPUTS)


def test_shapes_batch_major_in_and_out():
    model = make({"latent_size": 3})
    batch = segment_batch(n=7)
    x, u = batch["x"], batch["u"]
    out = model(x, u)
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "mean": (7, 3), "logvar": (7, 3), "prior_logvar": (7, 3), "z": (7, 3), "recon": (7, D)}  # fmt: skip
    mean, logvar = model.encode(x, u)
    assert mean.shape == logvar.shape == (7, 3)
    assert model.prior_logvar(u).shape == (7, 3) and model.decode(out["z"]).shape == (7, D)
    readouts = model.readouts(x, u)
    assert set(readouts) == {"mean", "sample"} and all(r.shape == (7, 3) and not r.requires_grad for r in readouts.values())
    torch.testing.assert_close(readouts["mean"], mean.detach())
    again = model.readouts(x, u, generator=torch.Generator().manual_seed(1))
    assert torch.equal(again["sample"], model.readouts(x, u, generator=torch.Generator().manual_seed(1))["sample"])
    assert model.neg_elbo(x, u).dim() == 0


# --- the networks ----------------------------------------------------------------------------------


def test_heads_are_three_separate_mlps_and_lambda_reads_only_u():
    model = make()
    batch = segment_batch()
    x, u = batch["x"], batch["u"]
    g, logv, lam = (reference_mlp(model.heads.network(j)) for j in range(3))
    mean, logvar = model.encode(x, u)
    xu = torch.cat([x, u], 1)
    torch.testing.assert_close(mean, g(xu))
    torch.testing.assert_close(logvar, logv(xu))
    torch.testing.assert_close(model.prior_logvar(u), lam(u))
    f = reference_mlp(model.decoder.network(0))
    z = torch.randn(9, D)
    torch.testing.assert_close(model.decode(z), f(z))
    # lambda(u) does not change with x: the heads' forward with other x gives the same third block
    torch.testing.assert_close(model(x, u)["prior_logvar"], model(torch.randn_like(x), u)["prior_logvar"])


def test_xavier_blocks_and_zero_gradient_off_the_blocks():
    model = make()
    heads = model.heads
    for layer, (weight, mask) in enumerate(layers(heads)):
        assert torch.equal(weight[mask == 0], torch.zeros_like(weight[mask == 0]))
        for j in range(3):
            w, _ = heads.network(j)[layer]
            bound = math.sqrt(6.0 / sum(w.shape))  # Xavier-uniform on the network's own fans
            assert w.abs().max() <= bound and w.abs().max() > 0.5 * bound
    assert heads.network(2)[0][0].shape == (2 * D, K)  # lambda's first layer reads the K u-columns only
    batch = segment_batch()
    model.neg_elbo(batch["x"], batch["u"]).backward()
    for weight, mask in layers(heads):
        assert torch.count_nonzero(weight.grad[mask == 0]) == 0
        assert torch.count_nonzero(weight.grad[mask == 1]) > 0


def test_parallel_mlps_refuse_bad_shapes():
    with pytest.raises(ValueError, match="outside"):
        ParallelMLPs(4, [(0, 5)], 3, 2)
    with pytest.raises(ValueError, match="at least one layer"):
        ParallelMLPs(4, [(0, 4)], 3, 2, n_layers=0)
    one = ParallelMLPs(4, [(0, 4), (1, 3)], 3, 2, n_layers=1)  # a single Linear layer per network
    h = torch.randn(4, 6)
    torch.testing.assert_close(one(h)[2:], reference_mlp(one.network(1))(h[1:3].t()).t())


# --- the ELBO --------------------------------------------------------------------------------------


def test_elbo_matches_gaussian_log_densities():
    model = make({"decoder_var": 0.05})
    batch = segment_batch(n=16)
    x, u = batch["x"], batch["u"]
    eps = torch.randn(16, D)
    with torch.no_grad():
        mean, logvar = model.encode(x, u)
        lam = model.prior_logvar(u)
        z = mean + (0.5 * logvar).exp() * eps
        log_px = Normal(model.decode(z), math.sqrt(0.05)).log_prob(x).sum(1)
        log_pz = Normal(torch.zeros_like(z), (0.5 * lam).exp()).log_prob(z).sum(1)
        log_qz = Normal(mean, (0.5 * logvar).exp()).log_prob(z).sum(1)
        elbo = (log_px + log_pz - log_qz).mean()
        terms = model.elbo_terms(x, u, eps)
        torch.testing.assert_close(terms["log_px"], log_px.mean())
        torch.testing.assert_close(terms["log_pz"], log_pz.mean())
        torch.testing.assert_close(terms["log_qz"], log_qz.mean())
        torch.testing.assert_close(terms["elbo"], elbo)
        torch.testing.assert_close(model.neg_elbo(x, u, eps), -elbo)
        torch.testing.assert_close(model(x, u, eps)["z"], z)


def test_neg_elbo_gradients_match_the_term_by_term_form():
    model, twin = make(), make()
    batch = segment_batch()
    eps = torch.randn(len(batch["x"]), D)
    model.neg_elbo(batch["x"], batch["u"], eps).backward()
    (-twin.elbo_terms(batch["x"], batch["u"], eps)["elbo"]).backward()
    for (name, p), q in zip(model.named_parameters(), twin.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-5, msg=name)


# --- the objective ---------------------------------------------------------------------------------


def test_train_step_moves_every_parameter_and_eval_nothing():
    model = make()
    objective = build_objective("ivae")
    optimizers = objective.make_optimizers(model, OptimizerFactory("adam", lr=1e-3))
    batch = segment_batch()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = objective.train_step(model, optimizers, batch, Progress(0))
    assert set(out) == {"loss"} and out["loss"].dim() == 0 and not out["loss"].requires_grad
    after = model.state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in before), "a parameter did not move"
    for weight, mask in layers(model.heads):
        assert torch.count_nonzero(weight.detach()[mask == 0]) == 0  # off-block entries stay zero
    trained = {k: v.clone() for k, v in after.items()}
    metrics = objective.eval_step(model, batch)
    assert set(metrics) == {"loss", "log_px", "log_pz", "log_qz"}
    assert all(torch.equal(trained[k], v) for k, v in model.state_dict().items())
    assert torch.equal(metrics["loss"], objective.eval_step(model, batch)["loss"])  # fixed evaluation noise
    torch.testing.assert_close(metrics["loss"], -(metrics["log_px"] + metrics["log_pz"] - metrics["log_qz"]))


class _Simulated:
    """A tiny batch source: x = s A with per-segment source scales, one-hot u."""

    def __init__(self, n=512, seed=0):
        g = torch.Generator().manual_seed(seed)
        labels = torch.arange(n) % 4
        scales = torch.rand(4, 3, generator=g) * 2 + 0.2
        self.s = torch.randn(n, 3, generator=g) * scales[labels]
        self.x = self.s @ torch.randn(3, 3, generator=g)
        self.u = nn.functional.one_hot(labels, 4).float()
        self.device = self.x.device

    def __len__(self):
        return len(self.x)

    def batch(self, index):
        return {"x": self.x[index], "u": self.u[index], "s": self.s[index]}


def test_training_through_fit_with_the_plateau_schedule_lowers_the_loss():
    from genlab.data.batches import ShuffledBatches

    torch.manual_seed(0)
    data = _Simulated()
    model = build_model("ivae", {}, {"input_shape": [3], "n_segments": 4, "latent_dim": 3})
    objective = build_objective("ivae")
    optimizers = objective.make_optimizers(model, OptimizerFactory("adam", lr=1e-2))
    schedulers = build_schedulers("plateau", optimizers, {"metric": "loss", "factor": 0.1, "patience": 20})
    assert schedulers["model"].unit == "epoch" and schedulers["model"].metric == "loss"
    logged = []
    fit(model, objective, optimizers, ShuffledBatches(data, 64, seed=0), max_iterations=320, schedulers=schedulers,
        log=lambda name, value, step: logged.append(value) if name == "batch.loss" else None, log_every=32)  # fmt: skip
    assert len(logged) == 10 and all(math.isfinite(v) for v in logged)
    assert logged[-1] < logged[0] - 5.0, logged
