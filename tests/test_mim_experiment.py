"""experiments.mim end to end on streams drawn afresh: every experiment x loss composes with the coupled
warm-up; bad input fails before any compute; each loss trains a few epochs, records the original's
statistics and reloads; a resumed run reproduces an uninterrupted one; the sweeps list the runs."""

from __future__ import annotations

import subprocess

import pytest
import torch
from conftest import REPO

from genlab.analysis.runs import load_model, load_runs
from genlab.registry import UnknownNameError

QUIET = {"--loglevel": "ERROR"}
LOSSES = {"mim": ("mim", {"sample": True, "inv_H": False}), "amim": ("mim", {"sample": False}), "vae": ("vae_mc", {"inv_H": False}),
          "ae": ("ae", {}), "mim_inv_h": ("mim", {"sample": True, "inv_H": True}), "vae_inv_h": ("vae_mc", {"inv_H": True})}  # fmt: skip
EXPERIMENTS = {"e1_mim": "toyMIM", "e1_vae": "toyVAE", "e1_ae": "toyAE", "e2": "toy4", "e3": "toy4", "e4": "toy4_20",
               "e5": "pca_fashion_mnist20"}  # fmt: skip
SHORT = ["dataset.tiny", "training.max_iterations=40", "training.checkpoint_every=10", "training.log_every=5",
         "training.progress=off", "evaluation.max_examples=640", "evaluation.view_points=500", "seed=3"]  # fmt: skip


def record(store, args):
    """One run of experiments.mim in this process, recorded in the file store ``store`` (the
    experiment's observers are reset first: ``run_cli`` adds its own every call)."""
    from experiments.mim import ex
    from ingredients.observers import run_cli

    ex.observers.clear()
    run_cli(ex, ["mim", "-F", str(store), "--loglevel", "ERROR", *args])


def config_of(named, updates=None):
    from experiments.mim import ex

    return ex.run("print_config", named_configs=named, config_updates=updates or {}, options=QUIET).config


@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_composes(loss):
    training = config_of([f"training.{loss}"])["training"]
    objective, hyper = LOSSES[loss]
    assert training["objective"] == objective and all(training["loss"][k] == v for k, v in hyper.items())


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_with_its_coupled_warm_up(experiment):
    config = config_of([experiment, "training.vae"] if experiment.startswith("e1") is False else [experiment])
    training, warmup = config["training"], (25 if experiment.startswith("e1") else 3)
    assert config["dataset"]["name"] == EXPERIMENTS[experiment]
    assert (training["warmup"], training["loss"]["warmup"], training["scheduler_options"]["warmup"]) == (warmup,) * 3
    assert (training["select_after_epochs"], training["early_stopping_patience"]) == (warmup, warmup + 1)
    assert training["epochs"] == (49 if experiment.startswith("e1") else 200) and training["scheduler"] == "noam"
    assert training["loss"]["inv_H"] is (experiment == "e3")
    if experiment.startswith("e1"):
        assert config["seed"] == 1 and config["model"]["options"]["mid_dim"] == 50
        assert config["model"]["options"]["delta_encoder"] is (experiment == "e1_ae")


def test_a_changed_warm_up_moves_all_four_settings():
    training = config_of(["e2"], {"training.warmup": 7})["training"]
    assert (training["loss"]["warmup"], training["scheduler_options"]["warmup"], training["select_after_epochs"],
            training["early_stopping_patience"]) == (7, 7, 7, 8)  # fmt: skip


def test_bad_input_fails_before_any_compute():
    with pytest.raises(UnknownNameError, match="valid mim objectives: ae, mim, vae_mc"):
        config_of([], {"training.objective": "beta_vae"})
    with pytest.raises(UnknownNameError, match="toy4_20"):
        config_of([], {"dataset.name": "toy5"})
    with pytest.raises(ValueError, match="q_x must be one of marginal, decoder"):
        config_of([], {"training.loss.q_x": "anchor"})
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        config_of([], {"model.options.activation": "gelu"})


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    store = tmp_path_factory.mktemp("mim")
    for loss in LOSSES:
        record(store, ["with", f"training.{loss}", *SHORT])
    return store


def test_each_loss_records_the_statistics_and_a_model_that_rebuilds(recorded):
    runs = load_runs(recorded)
    assert len(runs) == len(LOSSES) and set(runs["status"]) == {"COMPLETED"}
    for run in runs["run"]:
        final = run.final_metrics()
        for name in ("MI_ksg", "H_q_x", "x_recon_err", "clf_acc_KNN1", "clf_acc_KNN5", "clf_acc_KNN10", "MI", "H_enc",
                     "H_dec", "H_Msamp", "Dkl", "H_P_x", "H_P_z", "MI_ksg_l2_err"):  # fmt: skip
            assert f"test.{name}" in final, name
        assert 0.0 <= final["test.clf_acc_KNN5"] <= 1.0 and final["test.x_recon_err"] > 0
        assert abs(final["test.H_P_x"] - 1.56) < 0.15  # toy4's entropy (docs/mim.md §1.2)
        assert {"val.loss", "val.MI_ksg", "val.H_q_x", "batch.beta"} <= set(run.metric_names())
        evaluated = run.metric("val.loss")
        assert run.info["mim_stats"]["test_examples"] == 640
        model = load_model(run)
        assert model.z_dim == 2 and model.encoder.fixed_std is (run.config["training"]["objective"] == "ae")
        view = torch.load(run.artifact_path("toy_view.pt"), weights_only=False)
        assert view["x"].shape == (200, 2) and view["q_std"].shape == (200, 2) and view["points"] == 500
        assert list(evaluated.index) == list(range(10, 10 * (len(evaluated) + 1), 10))  # after every epoch of 10 batches


def test_the_decoding_pass_runs_once_the_warm_up_is_over(recorded):
    runs = load_runs(recorded, where={"training.objective": "mim", "training.loss.inv_H": False, "training.loss.sample": True})
    assert len(runs) == 1
    run = runs.iloc[0]["run"]
    beta, decoding = run.metric("batch.beta"), run.metric("batch.dec_loss")
    assert beta.max() == 1.0 and beta.min() < 1.0  # 40 iterations of 10 a pass: epochs 3 and 4 are past the warm-up of 3
    assert decoding.index.min() > 20 and set(decoding.index) == set(beta[beta == 1.0].index)


def test_a_mim_never_runs_the_decoding_pass(recorded):
    run = load_runs(recorded, where={"training.loss.sample": False}).iloc[0]["run"]
    assert "batch.dec_loss" not in run.metric_names() and run.metric("batch.beta").max() == 1.0


def test_the_pca_experiment_runs_on_the_embedded_stand_in(tmp_path):
    record(tmp_path, ["with", "e5", "training.vae", "model.options.z_dim=4", *SHORT])
    run = load_runs(tmp_path).iloc[0]["run"]
    final = run.final_metrics()
    assert run.config["dataset"]["name"] == "pca_fashion_mnist20" and run.info["model_inputs"]["input_shape"] == [20]
    assert 0.0 <= final["test.clf_acc_KNN5"] <= 1.0 and "test.H_P_x" not in final  # no true density for real data
    assert "toy_view.pt" not in run.artifact_names() and load_model(run).z_dim == 4


def test_resume_reproduces_an_uninterrupted_run(tmp_path):
    args = ["with", "training.mim", "dataset.tiny", "training.checkpoint_every=10", "training.progress=off",
            "evaluation.max_examples=256", "evaluation.view_points=300", "seed=4"]  # fmt: skip
    record(tmp_path, [*args, "training.max_iterations=30"])
    first = load_runs(tmp_path).iloc[0]["run"]
    resume = f"training.resume={first.info['checkpoint_dir']}/checkpoint_20.pt"
    record(tmp_path, [*args, "training.max_iterations=50", resume])
    record(tmp_path, [*args, "training.max_iterations=50"])
    runs = load_runs(tmp_path, resumes="separate")
    resumed, straight = runs.iloc[1]["run"], runs.iloc[2]["run"]
    assert resumed.info["resumed_from"].endswith("checkpoint_20.pt")
    a, b = (torch.load(r.artifact_path("model.pt"), weights_only=True) for r in (resumed, straight))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.final_metrics()["test.MI_ksg"] == straight.final_metrics()["test.MI_ksg"]


@pytest.mark.parametrize("script, count, axis", [("e1", 3, None), ("e2", 160, "model.options.mid_dim"),
                                                  ("e3", 160, "model.options.mid_dim"), ("e4", 200, "model.options.z_dim"),
                                                  ("e5", 200, "model.options.z_dim")])  # fmt: skip
def test_the_sweeps_list_the_readme_runs(script, count, axis):
    out = subprocess.run([str(REPO / "bin" / "mim" / f"{script}.sh"), "--dry-run"], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert len(lines) == count and all(line.startswith("python -m experiments.mim with ") for line in lines)
    if axis is not None:
        assert all(f" {axis}=" in line for line in lines) and {line.split()[-1] for line in lines} == {f"seed={s}" for s in range(1, 11)}
