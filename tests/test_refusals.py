"""Bad input is refused the way a new user needs it (issue 16): one line ``<program>: error: ...``
naming the fix, no traceback, exit status 2, and, for every check that needs no compute, no run
recorded. Each experiment offers only its own paper's objectives, model kinds and datasets.

The commands run in-process through the experiments' real entry point (``run_cli``), with the
default file store under a temporary ``GENLAB_DATA``; one test runs a real subprocess."""

from __future__ import annotations

import importlib
import logging
import subprocess
import sys
import zipfile

import pytest

from conftest import REPO, TINY_DISENT
from genlab.data import dsprites as ds
from genlab.data.files import strided_classes
from genlab.errors import ConfigError, GenlabError, MissingFile, SplitError
from genlab.registry import UnknownNameError
from ingredients.observers import run_cli

EXPERIMENTS = ("disent", "decoders", "composition", "fce2d")


def experiment(name: str, data_dir, monkeypatch):
    """``experiments.<name>.ex``, recording under ``data_dir``, its log to this test's stderr."""
    ex = importlib.import_module(f"experiments.{name}").ex
    monkeypatch.setenv("GENLAB_DATA", str(data_dir))
    monkeypatch.setattr(ex, "observers", [])  # run_cli adds the default file store
    for handler in logging.getLogger("genlab").handlers:  # made on import, on the stderr of the test then running
        if type(handler) is logging.StreamHandler:  # (not pytest's capturing handlers)
            handler.setStream(sys.__stderr__)  # the refusal itself is printed to sys.stderr, captured here
    return ex


def refused(name: str, args: list[str], data_dir, capsys, monkeypatch, records: int = 0) -> str:
    """Run ``python -m experiments.<name> <args>`` in-process; check the refusal; return its line."""
    ex = experiment(name, data_dir, monkeypatch)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        run_cli(ex, [f"{name}.py", *args])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(("WARNING - ", "INFO - ", "ERROR - "))]
    assert exit_.value.code == 2, err
    assert "Traceback" not in err and len(lines) == 1 and lines[0].startswith(f"{name}.py: error: "), err
    assert len(list(data_dir.glob("sims/*/*/run.json"))) == records, "a refused command left a record"
    return lines[0]


@pytest.mark.parametrize(
    "args, says",
    [
        (["training.objective=beta_vae"], "unknown fce2d objective 'beta_vae'; valid fce2d objectives: fce, flow_mle"),
        (["dataset.name=dsprites"], "this experiment takes points datasets: 2spirals"),
        (["model.kind=gaussian_vae"], "unknown fce2d model kind 'gaussian_vae'; valid fce2d model kinds: energy_flow"),
        (["model.kim"], 'Named config not found: "kim"'),
        (["training.lrr=3"], "unknown config key training.lrr (did you mean training.lr?)"),
        (["training.lr=-1"], "Invalid learning rate: -1"),
        (["training.loss.thresold=0.5"], "no hyperparameter(s) thresold; its hyperparameters are: flow_lr, redraw_nonfinite, threshold"),
        (["training.resume=/nonexistent"], "training.resume='/nonexistent': no such checkpoint"),
    ],
)
def test_fce2d_refuses_bad_names_and_values_in_one_line_and_records_nothing(args, says, tmp_path, capsys, monkeypatch):
    assert says in refused("fce2d", ["with", *args], tmp_path, capsys, monkeypatch)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_each_experiment_offers_only_its_own_papers_choices(name, tmp_path, capsys, monkeypatch):
    foreign = {"fce2d": ("beta_vae", "dsprites", "gaussian_vae"), "disent": ("fce", "8gaussians", "energy_flow"),
               "decoders": ("fce", "8gaussians", "energy_flow"), "composition": ("fce", "8gaussians", "energy_flow")}[name]  # fmt: skip
    objective, dataset, model = foreign
    offline = [] if name == "fce2d" else ["dataset.generated"]  # else the missing dSprites file is said first
    line = refused(name, ["with", *offline, f"training.objective={objective}"], tmp_path, capsys, monkeypatch)
    assert f"unknown {name} objective {objective!r}; valid {name} objectives:" in line
    assert "datasets: " in refused(name, ["with", f"dataset.name={dataset}"], tmp_path, capsys, monkeypatch)
    line = refused(name, ["with", *offline, f"model.kind={model}"], tmp_path, capsys, monkeypatch)
    assert f"unknown {name} model kind {model!r}; valid {name} model kinds:" in line


def test_a_missing_data_file_is_named_with_where_it_comes_from_before_anything_is_recorded(tmp_path, capsys, monkeypatch):
    line = refused("disent", ["with", "dataset.dsprites", f"dataset.path={tmp_path / 'nope.npz'}"], tmp_path, capsys, monkeypatch)
    assert f"dSprites file not found: {tmp_path / 'nope.npz'}" in line
    assert "google-deepmind/dsprites-dataset" in line and "dataset.source=generated" in line
    line = refused("disent", ["with", "dataset.shapes3d"], tmp_path, capsys, monkeypatch)  # the default path
    assert "3dshapes.h5" in line and str(tmp_path / "raw" / "shapes3d") in line


@pytest.mark.parametrize(
    "args, says",
    [
        (["dataset.condition=recomb2range", "dataset.variant=shape2tx", "dataset.strides=[1,1,1,32,1]"],
         "split dsprites/recomb2range/shape2tx leaves no test images (of 23040)"),  # posX only on the left
        (["dataset.tiny", "dataset.condition=extrp", "dataset.val_fraction=0.99999"], "leaves no training rows"),
    ],
)
def test_an_impossible_split_is_refused_before_anything_is_recorded(args, says, tmp_path, capsys, monkeypatch):
    assert says in refused("disent", ["with", "dataset.generated", *args], tmp_path, capsys, monkeypatch)


def test_a_refused_resume_is_one_line(tmp_path, capsys, monkeypatch):
    ex = experiment("fce2d", tmp_path, monkeypatch)
    small = ["dataset.tiny", "training.max_iterations=4", "training.checkpoint_every=2", "evaluation.run=[]",
             "training.progress=off", "seed=1"]  # fmt: skip
    run_cli(ex, ["fce2d.py", "with", *small])
    run_dir = next(tmp_path.glob("sims/fce2d/*/checkpoints")).parent
    line = refused("fce2d", ["with", *small, "training.lr=0.5", f"training.resume={run_dir}"], tmp_path, capsys, monkeypatch,
                   records=1)  # fmt: skip
    assert "differs from the checkpointed run's in training.lr" in line and "training.resume_changes" in line


def test_a_corrupt_data_file_found_while_reading_is_one_line_naming_it(tmp_path, capsys, monkeypatch):
    """Only reading finds a damaged archive, so the run has started and is recorded FAILED."""
    from test_dsprites import write_fixture

    path = tmp_path / ds.FILENAME
    write_fixture(path, strided_classes(ds.GRID, (1, 2, 4, 4, 4)))
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("imgs.npy")
    at = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size // 2
    raw[at : at + 64] = bytes(b ^ 0x5A for b in raw[at : at + 64])
    path.write_bytes(bytes(raw))
    line = refused("disent", ["with", *TINY_DISENT[1:], "dataset.dsprites", f"dataset.path={path}", "dataset.tiny"], tmp_path,
                   capsys, monkeypatch, records=1)  # fmt: skip
    assert str(path) in line and "is corrupt" in line


def test_the_real_command_line_exits_2_with_one_line_and_no_record(tmp_path):
    env = {"GENLAB_DATA": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-m", "experiments.fce2d", "with", "training.objective=beta_vae"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "fce2d.py: error: unknown fce2d objective 'beta_vae'; valid fce2d objectives: fce, flow_mle"]
    assert not (tmp_path / "sims").exists() or not list((tmp_path / "sims").rglob("run.json"))


def test_genlab_errors_are_the_builtin_errors_they_refine():
    assert issubclass(UnknownNameError, KeyError) and issubclass(MissingFile, FileNotFoundError)
    assert issubclass(SplitError, ConfigError) and issubclass(ConfigError, ValueError)
    assert all(issubclass(e, GenlabError) for e in (UnknownNameError, MissingFile, SplitError))


def test_a_bug_keeps_its_traceback_and_status_1(tmp_path, capsys, monkeypatch):
    """Only bad input is shortened: an exception genlab did not raise for the user is a bug."""
    ex = experiment("fce2d", tmp_path, monkeypatch)

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("ingredients.experiment.load_dataset", broken)
    with pytest.raises(SystemExit) as exit_:
        run_cli(ex, ["fce2d.py", "with", "dataset.tiny", "training.progress=off"])
    err = capsys.readouterr().err
    assert exit_.value.code == 1 and "Traceback" in err and "ZeroDivisionError: a bug" in err
