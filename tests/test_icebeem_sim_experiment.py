"""experiments.icebeem_sim: every named config composes, the model kind follows the method, bad input
fails before any compute, dataset.show describes the segments. Recorded runs (both readouts, the
rebuilt model), the figure and the notebook are tested in test_icebeem_sim_analysis.py."""

from __future__ import annotations

import pytest

from genlab.registry import UnknownNameError

QUIET = {"--loglevel": "ERROR"}


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


def test_dataset_show_prints_the_shapes_and_each_segments_statistics(capsys):
    from experiments.icebeem_sim import ex

    ex.run("dataset.show", named_configs=["dataset.imca", "dataset.tiny"], options=QUIET)
    out = capsys.readouterr().out
    assert "imca (simulation)" in out and "batch: x [5], u [20], s [5]" in out
    assert out.count(" mean [") == 21  # the whole set and each of the 20 segments
