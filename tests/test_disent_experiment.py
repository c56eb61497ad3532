"""experiments.disent end to end on tiny generated dSprites: records, reloads, resumes, reports bad
input before any compute, and records to MongoDB through Sacred's -m flag."""

from __future__ import annotations

import pytest
import torch

from conftest import REPO, TINY_DISENT as TINY, run_experiment
from genlab.analysis.runs import load_model, load_runs
from genlab.registry import UnknownNameError


def disent(args, data_dir, check=True, cwd=REPO):
    return run_experiment("disent", args, data_dir, check=check, cwd=cwd)


def test_runs_are_recorded_in_the_file_store_and_reload(recorded):
    runs = load_runs(recorded / "sims" / "disent")
    assert list(runs["status"]) == ["COMPLETED", "COMPLETED"]
    assert list(runs["training.objective"]) == ["beta_vae", "factor_vae"]
    assert runs["dataset.variant"].tolist() == ["shape2tx"] * 2  # the condition's default, recorded
    for column in ("train.recon_nll", "val.recon_nll", "test.recon_nll", "train.dci_disentanglement", "train.mig",
                   "train.factorvae_score", "batch.loss", "val.loss"):
        assert runs[column].notna().all(), column
    run = runs.iloc[0]["run"]
    assert run.info["input_shape"] == [1, 64, 64]
    assert run.metric("val.recon_nll").index.tolist() == [10, 20, 30]
    assert run.metric("batch.loss").index.tolist() == [5, 10, 15, 20, 25, 30]
    assert {"model.pt"} <= set(run.artifact_names())


def test_reloaded_model_reproduces_the_logged_test_nll(recorded):
    from genlab.analysis.runs import load_data
    from genlab.losses import bernoulli_nll

    run = load_runs(recorded / "sims" / "disent", where={"training.objective": "factor_vae"}).iloc[0]["run"]
    model = load_model(run)
    test = load_data(run).test
    with torch.no_grad():
        x = test.pixels(slice(None))
        nll = bernoulli_nll(model(x)["logits"], x).item()  # eval mode: posterior mean
    assert nll == pytest.approx(run.final_metrics()["test.recon_nll"], rel=1e-4)


@pytest.mark.slow  # 3 convolutional runs; the fast suite checks exact resumes on FCE (test_fce2d_experiment, test_run_records)
def test_resume_continues_exactly_where_a_run_stopped(tmp_path):
    common = ["with", *TINY, "dataset.condition=extrp", "training.eval_every=100", "training.checkpoint_every=10", "seed=4",
              "evaluation.run=[]"]  # fmt: skip
    disent([*common, "training.max_iterations=20"], tmp_path)
    first = tmp_path / "sims" / "disent" / "1"
    assert (first / "checkpoints" / "checkpoint_20.pt").is_file()
    # continue the recorded run from its own config, for 20 more iterations
    disent(["with", str(first / "config.json"), f"training.resume={first}", "training.max_iterations=40"], tmp_path)
    disent([*common, "training.max_iterations=40"], tmp_path)  # the same run, uninterrupted
    runs = load_runs(tmp_path / "sims" / "disent", resumes="separate")
    resumed, straight = runs.iloc[1]["run"], runs.iloc[2]["run"]
    assert resumed.info["resumed_from"].endswith("checkpoint_20.pt") and resumed.info["iterations"] == 40
    a, b = (torch.load(r.artifact_path("model.pt"), weights_only=True) for r in (resumed, straight))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.metric("batch.loss").index.min() == 25  # logging continues at the resumed step
    joined = load_runs(tmp_path / "sims" / "disent")  # the first two records are one logical run
    assert list(joined["links"]) == [[1, 2], [3]]
    assert joined.iloc[0]["run"].metric("batch.loss").equals(straight.metric("batch.loss"))


def test_bad_input_fails_before_any_compute(tmp_path):
    from experiments.disent import ex

    quiet = {"--loglevel": "ERROR"}
    with pytest.raises(UnknownNameError, match="valid dsprites recomb2range variants: shape2tx"):
        ex.run("print_config", config_updates={"dataset.condition": "recomb2range", "dataset.variant": "nope"}, options=quiet)
    with pytest.raises(UnknownNameError, match="recomb2element, recomb2range"):
        ex.run("print_config", config_updates={"dataset.condition": "recomb"}, options=quiet)
    with pytest.raises(UnknownNameError, match="unknown objective .nope.; valid objectives: .*beta_vae, .*cci_vae, .*factor_vae"):
        ex.run("print_config", config_updates={"training.objective": "nope"}, options=quiet)
    with pytest.raises(UnknownNameError, match="unknown disent objective .fce.; valid disent objectives: beta_vae, cci_vae, factor_vae, vae"):
        ex.run("print_config", config_updates={"training.objective": "fce"}, options=quiet)
    with pytest.raises(UnknownNameError, match="valid architectures: burgess"):
        ex.run("print_config", config_updates={"model.options.architecture": "nope"}, options=quiet)
    with pytest.raises(ValueError, match="model kind 'gaussian_vae' has no option.*latent_sise.*latent_size"):
        ex.run("print_config", config_updates={"model.options.latent_sise": 3}, options=quiet)
    with pytest.raises(UnknownNameError, match="unknown factor_images dataset 'moons'; valid factor_images datasets: dsprites, mpi3d"):
        ex.run("print_config", config_updates={"dataset.name": "moons"}, options=quiet)
    with pytest.raises(ValueError, match="'8gaussians' is points data; this experiment takes factor_images datasets: dsprites"):
        ex.run("print_config", config_updates={"dataset.name": "8gaussians"}, options=quiet)
    with pytest.raises(ValueError, match="dataset 'mpi3d' has no option.*verison.*factor_sizes"):
        ex.run("print_config", named_configs=["dataset.mpi3d"], config_updates={"dataset.options.verison": "toy"}, options=quiet)
    with pytest.raises(ValueError, match="no hyperparameter.*gama.*disc_lr.*gamma"):
        ex.run("print_config", config_updates={"training.loss.gama": 3, "training.objective": "factor_vae"}, options=quiet)
    with pytest.raises(Exception, match="not used anywhere"):
        ex.run("print_config", config_updates={"training.gamma": 3}, options=quiet)
    with pytest.raises(Exception, match="kim"):  # Sacred lists the available named configs
        ex.run("print_config", named_configs=["model.kimm"], options=quiet)
    missing = tmp_path / "nowhere.npz"
    with pytest.raises(FileNotFoundError, match="dataset.source=generated") as err:
        ex.run(config_updates={"dataset.path": str(missing), "training.progress": False}, options=quiet)
    assert str(missing) in str(err.value) and "dsprites-dataset" in str(err.value)


@pytest.mark.parametrize("experiment, own", [
    ("disent", {"model.kim", "training.factor_vae", "training.cci_vae", "training.smoke", "dataset.dsprites"}),
    ("decoders", {"model.kim", "model.deep_bn", "model.original_inputs", "training.gt_decoder", "dataset.generated"}),
])
def test_every_named_config_composes(experiment, own):
    import importlib

    from genlab.objectives import OBJECTIVES

    ex = importlib.import_module(f"experiments.{experiment}").ex
    names = [name for name, _ in ex.gather_named_configs()]
    assert own <= set(names)
    for name in names:
        run = ex.run("print_config", named_configs=[name], options={"--loglevel": "ERROR"})
        assert run.config["training"]["objective"] in OBJECTIVES


@pytest.mark.parametrize("experiment, foreign", [("disent", "training.fce_2d"), ("disent", "training.gt_decoder"),
                                                 ("decoders", "training.factor_vae"), ("decoders", "model.mlp_mixer")])
def test_another_papers_or_experiments_named_configs_are_refused(experiment, foreign):
    import importlib

    from sacred.utils import NamedConfigNotFoundError

    ex = importlib.import_module(f"experiments.{experiment}").ex
    with pytest.raises(NamedConfigNotFoundError, match=foreign.split(".")[1] + ".*Available config values"):
        ex.run("print_config", named_configs=[foreign], options={"--loglevel": "ERROR"})


def test_a_nonfinite_loss_fails_the_run_with_its_step(tmp_path):
    proc = disent(["with", *TINY, "training.max_iterations=200", "training.lr=1e6", "training.checkpoint_every=2"],
                  tmp_path, check=False)
    assert proc.returncode != 0
    run = load_runs(tmp_path / "sims" / "disent").iloc[0]["run"]
    assert run.status == "FAILED"
    assert "NaN or infinite" in "".join(run.fail_trace) and "iteration" in "".join(run.fail_trace)


@pytest.mark.mongo
@pytest.mark.slow  # the fast suite records to MongoDB through -m in tests/test_observers.py
def test_mongo_observer_via_sacred_flag(mongo_url, tmp_path):
    host_port = mongo_url.split("//", 1)[1]
    disent(["-m", f"{host_port}:disent_test", "with", *TINY, "training.max_iterations=5", "training.eval_every=5"], tmp_path)
    runs = load_runs(f"{mongo_url}/disent_test", experiment="disent")
    assert runs["status"].tolist() == ["COMPLETED"]
    run = runs.iloc[0]["run"]
    assert "test.recon_nll" not in runs.columns  # no split: no test side
    assert runs["train.recon_nll"].notna().all()
    model = load_model(run)
    assert model.input_shape == (1, 64, 64)
    assert len(load_runs(tmp_path / "sims" / "disent")) == 1  # the default file store as well
    assert not list(tmp_path.rglob("*.pickle"))  # nothing fell back to a failure_dir




@pytest.mark.parametrize("experiment, dataset, condition", [
    ("disent", "shapes3d", "recomb2element"),
    pytest.param("decoders", "mpi3d", "extrp", marks=pytest.mark.slow),  # the fast suite runs one of the three
    pytest.param("composition", "shapes3d", "recomb2range", marks=pytest.mark.slow)])
def test_rgb_datasets_run_record_and_reload_on_tiny_stand_ins(experiment, dataset, condition, tmp_path):
    from conftest import TINY as BASE

    args = ["with", *BASE, f"dataset.{dataset}", "dataset.source=standin", f"dataset.condition={condition}",
            "training.max_iterations=10", "training.eval_every=5"]
    if experiment != "decoders":
        args += ["evaluation.factorvae_votes=20"]
    if experiment == "composition":
        args += ["eval_triplets=64"]
    run_experiment(experiment, args, tmp_path)
    run = load_runs(tmp_path / "sims" / experiment).iloc[0]["run"]
    assert run.status == "COMPLETED" and run.info["input_shape"] == [3, 64, 64]
    assert {"train.recon_nll", "test.recon_nll"} <= set(run.final_metrics())
    assert run.config["dataset"]["variant"]  # the condition's default variant is recorded
