"""experiments.icebeem_sim: every named config composes, the model kind follows the method, bad input
fails before any compute, dataset.show describes the segments, and a run records both readouts
(the paper's and the intended one) and rebuilds from its record. The figure and the notebook are
tested in test_icebeem_sim_analysis.py."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from conftest import REPO, run_experiment

from genlab.analysis.runs import load_model, load_runs
from genlab.registry import UnknownNameError

QUIET = {"--loglevel": "ERROR"}
SHORT_ICEBEEM = ('training.phases=[{"name":"flow_mle","epochs":1,"optimizers":["flow"]},'
                 '{"name":"ebm","epochs":1,"optimizers":["ebm"],"evaluate":True},'
                 '{"name":"flow_1","epochs":1,"optimizers":["flow"]},'
                 '{"name":"ebm_1","epochs":1,"optimizers":["ebm"],"evaluate":True}]')  # fmt: skip


@pytest.mark.parametrize("method, kind", [("icebeem", "icebeem"), ("icebeem_original", "icebeem"), ("ivae", "ivae"), ("tcl", "tcl")])
@pytest.mark.parametrize("dataset", ["tcl", "imca"])
def test_every_named_config_composes_and_the_model_follows_the_method(method, kind, dataset):
    from experiments.icebeem_sim import ex

    run = ex.run("print_config", named_configs=[f"training.{method}", f"dataset.{dataset}"], options=QUIET)
    assert run.config["model"]["kind"] == kind and run.config["dataset"]["name"] == dataset
    assert run.config["dataset"]["data_seed"] == 1


def test_bad_input_fails_before_any_compute():
    from experiments.icebeem_sim import ex

    with pytest.raises(UnknownNameError, match="valid icebeem_sim objectives: icebeem_fce, ivae, tcl"):
        ex.run("print_config", config_updates={"training.objective": "beta_vae"}, options=QUIET)
    with pytest.raises(UnknownNameError, match="valid simulation datasets: imca, tcl"):
        ex.run("print_config", config_updates={"dataset.name": "tlc"}, options=QUIET)
    with pytest.raises(ValueError, match="flow_energy must be one of augmented, plain"):
        ex.run("print_config", config_updates={"training.loss.flow_energy": "none"}, options=QUIET)
    with pytest.raises(ValueError, match="phase 'warmup' is none of flow_mle, ebm_g, ebm, flow"):
        ex.run("main", config_updates={"training.phases": [{"name": "warmup", "epochs": 1}], "dataset.tiny": True},
               options=QUIET)


def test_dataset_show_prints_the_shapes_and_each_segments_statistics():
    proc = subprocess.run([sys.executable, "-m", "experiments.icebeem_sim", "dataset.show", "with", "dataset.imca",
                           "dataset.tiny"], cwd=REPO, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "imca (simulation)" in proc.stdout and "batch: x [5], u [20], s [5]" in proc.stdout
    assert proc.stdout.count(" mean [") == 21  # the whole set and each of the 20 segments


@pytest.fixture(scope="module")
def icebeem_run(tmp_path_factory):
    data = tmp_path_factory.mktemp("icebeem-sim")
    run_experiment("icebeem_sim", ["with", "dataset.tiny", SHORT_ICEBEEM, "model.options.flow_options.n_layers=1",
                                   "training.progress=off", "training.checkpoint_every=6", "seed=3"], data)  # fmt: skip
    return data


def test_a_run_records_the_paper_readout_and_the_intended_one_and_rebuilds(icebeem_run):
    run = load_runs(icebeem_run / "sims" / "icebeem_sim").iloc[0]["run"]
    final = run.final_metrics()
    assert run.status == "COMPLETED" and run.config["model"]["kind"] == "icebeem"
    flow_evaluations = run.metric("val.mcc_flow_ica")
    assert len(flow_evaluations) == 2  # after each EBM phase
    assert final["train.mcc_paper"] == pytest.approx(flow_evaluations.max())  # the original's best-of readout
    assert final["train.mcc"] == final["train.mcc_ebm_ica"]  # the intended: ICA of f(x), final model
    assert final["train.mcc"] == pytest.approx(flow_evaluations.index.size and run.metric("val.mcc_ebm_ica").iloc[-1])
    model = load_model(run).eval()
    from genlab.data import load_dataset
    from genlab.metrics.mcc import fast_ica, mcc

    data = load_dataset(run.config["dataset"], "cpu", run.config["seed"]).train.batch(slice(None))
    with torch.no_grad():
        features = model.ebm.f(data["x"]).numpy()
    assert mcc(fast_ica(features), data["s"].numpy()) == pytest.approx(final["train.mcc"], abs=1e-6)
