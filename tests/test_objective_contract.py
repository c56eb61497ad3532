"""The contract every registered training objective must keep (``genlab.objectives.base``).

Parametrised over every key of ``OBJECTIVES``: a train step moves only what its optimizers own (and
on step 0 exactly the players expected to move), eval moves no parameter or buffer, the objective's
state round-trips through ``state_dict`` / ``load_state_dict`` and ``torch.save``, and
``make_optimizers`` returns optimizers over the model's and the objective's own networks only.

Each objective has a TINY fixture in ``FIXTURES`` (models built through ``genlab.models.build_model``,
so the registry path is exercised); a new objective needs one there, or
``test_every_objective_has_a_fixture`` fails.
"""

from __future__ import annotations

import copy
import io
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest
import torch
from torch import nn

from genlab.models import build_model
from genlab.objectives import OBJECTIVES, Objective, build_objective
from genlab.training.optimizers import OptimizerFactory
from genlab.training.progress import Progress

SHAPE = (1, 8, 8)  # tiny images
N = 8  # batch size (FactorVAE splits it in halves)
K = 3  # factors / actions of the tiny image data
LATENT = 3
# conv -> BatchNorm -> MLP: the BatchNorm's running statistics catch an eval step that forgets eval mode
ENCODER = [("conv", 4, 4, 2, 1), ("relu",), ("batch_norm",), ("flatten",), ("linear", 16), ("relu",)]


def optimizer_factory() -> OptimizerFactory:
    return OptimizerFactory(name="adam", lr=1e-3)


# --- batches -------------------------------------------------------------------------------------


def _images(g: torch.Generator, n: int = N) -> torch.Tensor:
    return (torch.rand(n, *SHAPE, generator=g) < 0.3).float()


def image_batch(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"x": _images(g), "factors": torch.rand(N, K, generator=g)}


def triplet_batch(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    action = torch.nn.functional.one_hot(torch.randint(K, (N,), generator=g), K).float()
    return {"x": _images(g), "transform": _images(g), "target": _images(g), "action": action,
            "factors": torch.rand(N, K, generator=g)}  # fmt: skip


def segments_batch(seed: int = 0) -> dict[str, torch.Tensor]:
    """Simulation data: observations, a one-hot segment of 4 and the true sources."""
    g = torch.Generator().manual_seed(seed)
    u = torch.nn.functional.one_hot(torch.arange(32) % 4, 4).float()
    return {"x": torch.randn(32, 3, generator=g), "u": u, "s": torch.randn(32, 3, generator=g)}


SIMULATION = {"input_shape": (3,), "n_segments": 4, "latent_dim": 3, "mixing_layers": 2}


def points_batch(seed: int = 0) -> dict[str, torch.Tensor]:
    """2D points with a (made-up, finite) true log density, so the density-error metrics run too."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(32, 2, generator=g)
    return {"x": x, "log_density": -0.5 * x.square().sum(1) - math.log(2 * math.pi)}


BINARY_HVAE = {"nz0": 4, "nz1": 8, "hidden": 16, "trunk": 16}  # tiny symvae model
HVAE_VAMP = {"hidden": 16, "z1_size": 4, "z2_size": 3, "components": 8}  # tiny MIM image model (>= N pseudo-inputs for S-MIM)
PIXEL_HVAE = {**HVAE_VAMP, "decoder": "pixel", "pixel_channels": 4, "pixel_layers": 2}


def digits_batch(seed: int = 0) -> dict[str, torch.Tensor]:
    """Binary 28x28 images, the input the symvae model takes."""
    g = torch.Generator().manual_seed(seed)
    return {"x": (torch.rand(N, 1, 28, 28, generator=g) < 0.3).float()}


def labelled_batch(seed: int = 0) -> dict[str, torch.Tensor]:
    """Grey images in [0, 1] with class labels, the input ICE-BeeM's image EBMs take."""
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.rand(N, *SHAPE, generator=g), "y": torch.randint(K, (N,), generator=g), "index": torch.arange(N)}


IMAGE_EBM = {"ngf": 8, "feature_size": 4}  # ConvMLP with BatchNorm and Dropout
IMAGE_INPUTS = {"input_shape": SHAPE, "n_classes": K}

# --- fixtures ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fixture:
    """A tiny setting for objective ``name``: calling it returns ``(model, objective, batch)``.

    The model is ``build_model(kind, options + the objective's model_options, inputs)``.
    ``moved``: the optimizers whose parameters step 0 (``Progress(0)``) moves; ``None``: all of them.
    ``moves_every_parameter``: whether step 0 moves every parameter of those optimizers (not where a
    zero-initialised layer leaves the layers before it without a gradient on the first step).
    """

    name: str
    kind: str
    options: dict[str, Any]
    inputs: dict[str, Any]
    batch: Callable[[], dict[str, torch.Tensor]]
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    moved: frozenset[str] | None = None
    moves_every_parameter: bool = True
    phase: str = "train"  # the phase of the step (objectives whose phases do different things)
    handed: frozenset[str] | None = None  # the optimizers that phase hands the step (None: all)
    has_buffers: bool = True  # False: a model without buffers (the eval check covers parameters only)

    def progress(self) -> Progress:
        return Progress(0, phase=self.phase, epoch_length=2)

    def step_optimizers(self, optimizers: dict) -> dict:
        return dict(optimizers) if self.handed is None else {k: optimizers[k] for k in self.handed}

    def objective(self) -> Objective:
        return build_objective(self.name, **self.hyperparameters)

    def __call__(self) -> tuple[nn.Module, Objective, dict[str, torch.Tensor]]:
        torch.manual_seed(0)
        objective = self.objective()
        options = {**self.options, **type(objective).model_options}
        model = build_model(self.kind, options, self.inputs)
        return model, objective, self.batch()


def vae_fixture(name: str, **hyperparameters: Any) -> Fixture:
    options = {"architecture": None, "latent_size": LATENT, "encoder_layers": ENCODER}
    return Fixture(name, "gaussian_vae", options, {"input_shape": SHAPE}, image_batch, hyperparameters)


FIXTURES: dict[str, Fixture] = {
    f.name: f
    for f in [
        vae_fixture("vae"),
        vae_fixture("beta_vae", beta=4.0),
        vae_fixture("cci_vae", gamma=10.0, c_max=5.0, c_steps=100),
        vae_fixture("factor_vae", gamma=10.0, disc_width=8, disc_depth=2),
        Fixture(
            "gt_decoder", "gt_decoder",
            {"decoder_layers": [("linear", 16), ("relu",), ("batch_norm",), ("linear", -1), ("unflatten", -1, 8, 8)]},
            {"n_factors": K, "input_shape": SHAPE, "factor_values": [[0.0, 0.5, 1.0], [0.0, 2.0], [1.0, 2.0, 4.0]]},
            image_batch,
        ),
        Fixture(
            "composer", "composer",
            {"architecture": None, "latent_size": LATENT, "encoder_layers": ENCODER, "mixer": "mlp"},
            {"input_shape": SHAPE, "n_factors": K},
            triplet_batch, {"beta": 2.0},
        ),
        # MAF: no data-dependent init, so step 0 (an EBM step, docs/fce.md §3.3) leaves every flow weight as it
        # was (Glow's ActNorms would initialise from data there). threshold 0.4 < the first step's
        # accuracy (0.5: p >> q at init), so the state after step 0 (flow next) differs from a fresh one's
        Fixture(
            "fce", "energy_flow",
            {"flow": "maf", "flow_options": {"blocks": 2, "hidden": 8}, "ebm_options": {"hidden": 8}},
            {"input_shape": (2,)}, points_batch, {"threshold": 0.4}, moved=frozenset({"ebm"}),
        ),
        # Glow: its ActNorms initialise on step 0, so eval (after a step) must leave the flags alone; its
        # couplings' output layers start at zero, so step 0 gives their conditioners no gradient
        Fixture(
            "flow_mle", "energy_flow", {"flow": "glow", "flow_options": {"steps": 2, "width": 8}},
            {"input_shape": (2,)}, points_batch, moves_every_parameter=False,
        ),
        # a flow phase, handed its optimizer: the flow moves (its ActNorms initialise from the first
        # batch), the EBM does not; the step draws the phase's noise set, so the state differs from a fresh one
        Fixture(
            "icebeem_fce", "icebeem", {"hidden": 8, "flow_options": {"n_layers": 1}}, SIMULATION, segments_batch,
            phase="flow_1", handed=frozenset({"flow"}),
        ),
        # binary HVAE (docs/symvae.md): 28x28 only; no buffers (the MI monitors are objective state)
        Fixture("sym_equilibrium", "binary_hvae", BINARY_HVAE, {"input_shape": (1, 28, 28)}, digits_batch, has_buffers=False),
        Fixture("binary_elbo", "binary_hvae", BINARY_HVAE, {"input_shape": (1, 28, 28)}, digits_batch, has_buffers=False),
        Fixture("ivae", "ivae", {}, SIMULATION, segments_batch),
        # MIM's toys (docs/mim.md §3.2): warm-up 1, so step 0 is at beta = 1 and S-MIM's decoding pass runs;
        # the auto-encoder's delta encoder leaves the log-std half of the encoder's head without a gradient
        Fixture("mim", "gaussian_mlp", {"mid_dim": 8}, {"input_shape": (2,)}, points_batch, {"warmup": 1}, has_buffers=False),
        Fixture("vae_mc", "gaussian_mlp", {"mid_dim": 8}, {"input_shape": (2,)}, points_batch, {"inv_H": True}, has_buffers=False),
        Fixture("ae", "gaussian_mlp", {"mid_dim": 8}, {"input_shape": (2,)}, points_batch, moves_every_parameter=False,
                has_buffers=False),
        Fixture("tcl", "tcl", {"n_layers": 2}, SIMULATION, segments_batch),
        # MIM's image HVAEs (docs/mim.md §3.3): warm-up 1, so step 0 is at beta = 1 and S-MIM's decoding pass
        # runs, here the PixelHVAE's with x drawn autoregressively (the convHVAE's: tests/test_mim_image_objectives.py)
        Fixture("hvae_vae", "hvae_vamp", HVAE_VAMP, {"input_shape": (1, 28, 28)}, digits_batch, {"warmup": 1}, has_buffers=False),
        Fixture("hvae_mim", "hvae_vamp", PIXEL_HVAE, {"input_shape": (1, 28, 28)}, digits_batch, {"warmup": 1}),
        # ICE-BeeM's image EBMs (docs/icebeem.md §4b): the unconditional baseline and the conditional one. The
        # score -grad_x E of a piecewise-linear net does not depend on the biases that only shift a pre-activation
        # (the convolutions' before BatchNorm, the MLP head's before its leaky ReLU and after it): no gradient there
        Fixture("dsm", "image_ebm", IMAGE_EBM, IMAGE_INPUTS, labelled_batch, moves_every_parameter=False),
        Fixture("cdsm", "image_ebm", IMAGE_EBM, IMAGE_INPUTS, labelled_batch, moves_every_parameter=False),
    ]
}  # fmt: skip

NAMES = OBJECTIVES.names()


# --- helpers -------------------------------------------------------------------------------------


def networks(model: nn.Module, objective: Objective) -> dict[str, nn.Module]:
    """The model and every auxiliary network of the objective (its ``nn.Module`` attributes)."""
    aux = {f"objective.{k}": v for k, v in vars(objective).items() if isinstance(v, nn.Module)}
    return {"model": model, **aux}


def parameters(model: nn.Module, objective: Objective) -> dict[str, nn.Parameter]:
    return {f"{owner}.{n}": p for owner, m in networks(model, objective).items() for n, p in m.named_parameters()}


def buffers(model: nn.Module, objective: Objective) -> dict[str, torch.Tensor]:
    """Every buffer, non-persistent ones included."""
    return {f"{owner}.{n}": b for owner, m in networks(model, objective).items() for n, b in m.named_buffers()}


def snapshot(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in tensors.items()}


def changed(before: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor]) -> set[str]:
    assert set(before) == set(tensors), "the set of parameters / buffers changed"
    return {k for k, v in tensors.items() if not torch.equal(before[k], v.detach())}


def owners(optimizers: dict[str, torch.optim.Optimizer]) -> dict[int, set[str]]:
    """id(parameter) -> the names of the optimizers whose param groups hold it."""
    out: dict[int, set[str]] = {}
    for name, opt in optimizers.items():
        for group in opt.param_groups:
            for p in group["params"]:
                out.setdefault(id(p), set()).add(name)
    return out


def assert_flat_metrics(metrics: Any, what: str) -> None:
    """A non-empty flat dict of finite Python numbers or detached 0-d tensors."""
    assert isinstance(metrics, dict) and metrics, f"{what} must return a non-empty dict, got {metrics!r}"
    for key, value in metrics.items():
        assert isinstance(key, str), f"{what}: metric name {key!r} is not a string"
        if isinstance(value, torch.Tensor):
            assert value.dim() == 0, f"{what}: {key} has shape {tuple(value.shape)}, not a scalar"
            assert not value.requires_grad, f"{what}: {key} still carries a graph (detach it)"
            assert torch.isfinite(value), f"{what}: {key} = {value} is not finite"
        else:
            assert isinstance(value, (int, float)) and not isinstance(value, bool), (
                f"{what}: {key} = {value!r} ({type(value).__name__}) is neither a number nor a 0-d tensor"
            )
            assert math.isfinite(value), f"{what}: {key} = {value} is not finite"


def assert_same_state(a: Any, b: Any, path: str = "state") -> None:
    """Nested dicts equal key for key; tensors bitwise (and in dtype), other values by ==."""
    if isinstance(a, dict):
        assert isinstance(b, dict), f"{path}: {type(b).__name__} instead of a dict"
        assert set(a) == set(b), f"{path}: keys {sorted(map(str, a))} != {sorted(map(str, b))}"
        for k in a:
            assert_same_state(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor), f"{path}: {type(b).__name__} instead of a tensor"
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), f"{path}: tensors differ"
    else:
        assert type(a) is type(b) and a == b, f"{path}: {a!r} != {b!r}"


def trained(name: str):
    """A fixture after ``make_optimizers`` and one train step: (model, objective, optimizers, batch)."""
    model, objective, batch = FIXTURES[name]()
    optimizers = FIXTURES[name].step_optimizers(objective.make_optimizers(model, optimizer_factory()))
    objective.train_step(model, optimizers, batch, FIXTURES[name].progress())
    return model, objective, optimizers, batch


# --- tests ---------------------------------------------------------------------------------------


def test_every_objective_has_a_fixture():
    missing, stale = set(NAMES) - set(FIXTURES), set(FIXTURES) - set(NAMES)
    assert set(FIXTURES) == set(NAMES), (
        f"objectives without a contract fixture: {sorted(missing)} (add a tiny one to FIXTURES in "
        f"tests/test_objective_contract.py); fixtures of no registered objective: {sorted(stale)}"
    )


@pytest.mark.parametrize("name", NAMES)
def test_make_optimizers_covers_only_the_model_and_the_objective_networks(name):
    model, objective, _ = FIXTURES[name]()
    optimizers = objective.make_optimizers(model, optimizer_factory())
    assert isinstance(optimizers, dict) and optimizers, f"make_optimizers returned {optimizers!r}"
    known = {id(p): k for k, p in parameters(model, objective).items()}  # aux nets exist now
    for opt_name, opt in optimizers.items():
        assert isinstance(opt_name, str)
        assert isinstance(opt, torch.optim.Optimizer), f"{opt_name}: {type(opt).__name__} is not a torch optimizer"
        params = [p for group in opt.param_groups for p in group["params"]]
        assert params, f"optimizer {opt_name!r} holds no parameter"
        foreign = [tuple(p.shape) for p in params if id(p) not in known]
        assert not foreign, f"optimizer {opt_name!r} holds parameters of neither the model nor the objective: {foreign}"


@pytest.mark.parametrize("name", NAMES)
def test_train_step_moves_only_what_its_optimizers_own(name):
    fixture = FIXTURES[name]
    model, objective, batch = fixture()
    optimizers = fixture.step_optimizers(objective.make_optimizers(model, optimizer_factory()))
    params = parameters(model, objective)  # after make_optimizers: FactorVAE's discriminator exists only now
    before = snapshot(params)
    flags = {k: p.requires_grad for k, p in params.items()}

    metrics = objective.train_step(model, optimizers, batch, fixture.progress())

    assert_flat_metrics(metrics, f"{name}.train_step")
    assert {k: p.requires_grad for k, p in params.items()} == flags, "train_step left requires_grad flags changed"
    moved = changed(before, params)
    assert moved, "one train step changed no parameter"
    owned = owners(optimizers)
    by_optimizer = {o: {k for k, p in params.items() if o in owned.get(id(p), ())} for o in optimizers}
    outside = {k for k, p in params.items() if id(p) not in owned}
    assert not moved & outside, f"parameters held by no optimizer changed: {sorted(moved & outside)}"

    expected = set(optimizers) if fixture.moved is None else set(fixture.moved)
    assert expected <= set(optimizers), f"fixture expects optimizers {sorted(expected)}, got {sorted(optimizers)}"
    may_move = set().union(*(by_optimizer[o] for o in expected))
    assert moved <= may_move, f"step 0 should move only {sorted(expected)}'s parameters: {sorted(moved - may_move)}"
    for o in set(optimizers) - expected:
        assert not moved & by_optimizer[o], f"optimizer {o!r}'s player should not move on step 0"
    for o in expected:
        assert moved & by_optimizer[o], f"step 0 moved none of optimizer {o!r}'s parameters"
    if fixture.moves_every_parameter:
        assert moved == may_move, f"step 0 left parameters of {sorted(expected)} unchanged: {sorted(may_move - moved)}"


@pytest.mark.parametrize("name", NAMES)
def test_eval_step_moves_no_parameter_or_buffer(name):
    model, objective, _, batch = trained(name)  # after a step: Glow's ActNorms are initialised, BN stats moved
    params, bufs = parameters(model, objective), buffers(model, objective)
    assert bool(bufs) == FIXTURES[name].has_buffers, "a fixture with buffers must say so: the buffer check would be vacuous"
    before_p, before_b = snapshot(params), snapshot(bufs)
    flags = {k: p.requires_grad for k, p in params.items()}

    metrics = objective.eval_step(model, batch)

    assert_flat_metrics(metrics, f"{name}.eval_step")
    assert not changed(before_p, params), f"eval_step changed parameters {sorted(changed(before_p, params))}"
    assert not changed(before_b, bufs), f"eval_step changed buffers {sorted(changed(before_b, bufs))}"
    assert {k: p.requires_grad for k, p in params.items()} == flags, "eval_step left requires_grad flags changed"


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trips(name):
    fixture = FIXTURES[name]
    model, objective, _, batch = trained(name)
    state = objective.state_dict()
    assert isinstance(state, dict)

    def new_objective() -> Objective:
        objective = fixture.objective()
        objective.make_optimizers(copy.deepcopy(model), optimizer_factory())  # builds any auxiliary network
        return objective

    def restored(from_state: dict) -> Objective:
        objective = new_objective()
        objective.load_state_dict(from_state)
        return objective

    if state:  # else the round trip below could not tell a load that does nothing from one that works
        try:
            assert_same_state(new_objective().state_dict(), state)
        except AssertionError:
            pass
        else:
            pytest.fail("a fresh objective already has the trained state: make the fixture's state differ")
    fresh = restored(state)
    assert_same_state(fresh.state_dict(), state)
    # the restored objective evaluates the same model exactly as the original (FactorVAE's TC uses D)
    assert_same_state(fresh.eval_step(model, batch), objective.eval_step(model, batch), "eval metrics")

    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    assert_same_state(loaded, state, "reloaded state")
    assert_same_state(restored(loaded).state_dict(), state, "state restored from the reloaded file")
