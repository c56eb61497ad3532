"""Learning-rate schedules: known answers for Noam, staircase and plateau decay, metric look-up,
exact resume from state_dict, and build_schedulers' choice of optimizers and option checks."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from genlab.registry import UnknownNameError
from genlab.training.schedulers import (
    SCHEDULERS,
    MissingQuantityError,
    Scheduler,
    build_schedulers,
    scheduler_options,
)


def optimizer(lr: float = 1e-3) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=lr)


def advance(scheduler: Scheduler, units: int, metrics=None) -> list[float]:
    """The lr in force during each of ``units`` units, stepping the optimizer then the schedule."""
    lrs = []
    for _ in range(units):
        lrs.append(scheduler.lr()[0])
        scheduler.optimizer.step()  # no gradients: nothing moves, but torch sees the usual order
        scheduler.step(metrics)
    return lrs


def test_registry_and_defaults():
    assert SCHEDULERS.names() == ["noam", "plateau", "step"]
    assert scheduler_options("noam") == {"warmup": 4000, "unit": "iteration", "optimizers": None}
    assert scheduler_options("step") == {"step_size": 1000, "gamma": 0.1, "unit": "iteration", "optimizers": None}
    assert scheduler_options("plateau") == {
        "metric": "loss", "mode": "min", "factor": 0.1, "patience": 10, "threshold": 1e-4,
        "threshold_mode": "rel", "cooldown": 0, "min_lr": 0.0, "optimizers": None,
    }


def test_noam_per_epoch_with_warmup_3():
    sched = SCHEDULERS.get("noam")(optimizer(1e-3), warmup=3, unit="epoch")
    assert sched.unit == "epoch"
    lrs = advance(sched, 10)
    assert lrs[:4] == pytest.approx([1e-3 / 3, 2e-3 / 3, 1e-3, 1e-3 * math.sqrt(3 / 4)], rel=1e-12)
    assert lrs[:3] == pytest.approx([3.333e-4, 6.667e-4, 1e-3], abs=1e-7)
    assert lrs[9] == pytest.approx(1e-3 * math.sqrt(3 / 10), rel=1e-12)
    assert lrs[9] == pytest.approx(5.477e-4, abs=1e-7)


def test_step_decay_drops_at_exactly_step_size_units():
    sched = SCHEDULERS.get("step")(optimizer(1e-2), step_size=4, gamma=0.1)
    assert sched.unit == "iteration"
    lrs = advance(sched, 9)
    assert lrs[:4] == [1e-2] * 4
    assert lrs[4:8] == pytest.approx([1e-3] * 4, rel=1e-12)
    assert lrs[8] == pytest.approx(1e-4, rel=1e-12)


def test_plateau_waits_patience_plus_one_non_improving_epochs():
    sched = SCHEDULERS.get("plateau")(optimizer(1.0), patience=2, factor=0.5)
    assert sched.unit == "epoch"
    advance(sched, 1, {"loss": 1.0, "kl": 7.0})  # the first epoch sets the best value
    advance(sched, 2, {"loss": 1.0})
    assert sched.lr() == [1.0]  # two epochs without improvement: not yet
    advance(sched, 1, {"loss": 1.5})
    assert sched.lr() == [0.5]  # the third (patience + 1): halved
    advance(sched, 1, {"loss": 0.5})
    assert sched.lr() == [0.5]  # an improvement resets the count


def test_plateau_follows_the_named_metric_in_max_mode():
    sched = SCHEDULERS.get("plateau")(optimizer(1.0), metric="accuracy", mode="max", patience=0)
    advance(sched, 1, {"accuracy": 0.5, "loss": 9.0})
    advance(sched, 1, {"accuracy": 0.6, "loss": 10.0})  # better accuracy, worse loss
    assert sched.lr() == [1.0]
    advance(sched, 1, {"accuracy": 0.6, "loss": 0.0})
    assert sched.lr() == pytest.approx([0.1])


def test_plateau_names_the_available_quantities_when_its_metric_is_missing():
    sched = SCHEDULERS.get("plateau")(optimizer(), metric="nll")
    with pytest.raises(KeyError) as err:
        sched.step({"loss": 1.0, "kl": 0.5})
    assert isinstance(err.value, MissingQuantityError)
    assert str(err.value) == "the schedule reads training quantity 'nll', which is missing; available quantities: kl, loss"
    with pytest.raises(KeyError, match=r"'nll', which is missing; available quantities: \(none\)"):
        sched.step()


@pytest.mark.parametrize(
    "name,options,metrics",
    [
        ("noam", {"warmup": 3}, None),
        ("step", {"step_size": 2, "gamma": 0.5}, None),
        ("plateau", {"patience": 1, "factor": 0.5}, {"loss": 1.0}),
    ],
)
def test_resume_from_state_dict_continues_exactly(name, options, metrics):
    build = SCHEDULERS.get(name)
    uninterrupted = build(optimizer(1e-2), **options)
    expected = advance(uninterrupted, 9, metrics)

    first = build(optimizer(1e-2), **options)
    head = advance(first, 4, metrics)
    opt_state, sched_state = copy.deepcopy(first.optimizer.state_dict()), copy.deepcopy(first.state_dict())

    resumed = build(optimizer(1e-2), **options)  # a fresh run: a new optimizer, then the saved states
    resumed.optimizer.load_state_dict(opt_state)
    resumed.load_state_dict(sched_state)
    tail = advance(resumed, 5, metrics)
    assert head + tail == expected
    assert len(set(expected)) > 1  # the schedule did change the rate within these units


def test_build_schedulers_applies_to_all_optimizers_by_default():
    opts = {"model": optimizer(1e-3), "discriminator": optimizer(1e-4)}
    scheds = build_schedulers("step", opts, {"step_size": 1})
    assert list(scheds) == ["model", "discriminator"]
    for key, sched in scheds.items():
        assert sched.optimizer is opts[key]
        advance(sched, 1)
    assert opts["model"].param_groups[0]["lr"] == pytest.approx(1e-4)
    assert opts["discriminator"].param_groups[0]["lr"] == pytest.approx(1e-5)
    assert build_schedulers(None, opts, {}) == {}


def test_build_schedulers_applies_to_the_named_subset():
    opts = {"model": optimizer(), "flow": optimizer(), "discriminator": optimizer()}
    scheds = build_schedulers("noam", opts, {"optimizers": ["flow"], "warmup": 10, "unit": "epoch"})
    assert list(scheds) == ["flow"]
    assert scheds["flow"].unit == "epoch"
    assert opts["flow"].param_groups[0]["lr"] == pytest.approx(1e-4)  # k = 1 of a 10-unit warm-up
    assert opts["model"].param_groups[0]["lr"] == 1e-3  # untouched


def test_build_schedulers_refuses_unknown_optimizers_and_options():
    opts = {"model": optimizer(), "aux": optimizer()}
    with pytest.raises(ValueError, match="no optimizer.*'critic'; available optimizers: model, aux"):
        build_schedulers("step", opts, {"optimizers": ["model", "critic"]})
    with pytest.raises(ValueError) as err:
        build_schedulers("step", opts, {"step_sizes": 10})
    assert str(err.value) == (
        "scheduler 'step' has no option(s) step_sizes; its options are: gamma, optimizers, step_size, unit"
    )
    with pytest.raises(UnknownNameError, match="unknown scheduler 'cosine'; valid schedulers: noam, plateau, step"):
        build_schedulers("cosine", opts, {})


@pytest.mark.parametrize(
    "name,options,option",
    [
        ("noam", {"unit": "batch"}, "unit"),
        ("noam", {"warmup": 0}, "warmup"),
        ("step", {"step_size": 0}, "step_size"),
        ("step", {"unit": "epochs"}, "unit"),
        ("plateau", {"mode": "minimum"}, "mode"),
        ("plateau", {"threshold_mode": "relative"}, "threshold_mode"),
        ("plateau", {"factor": 1.0}, "factor"),
    ],
)
def test_bad_option_values_are_refused_when_built(name, options, option):
    with pytest.raises(ValueError, match=f"option {option} "):
        build_schedulers(name, {"model": optimizer()}, options)
