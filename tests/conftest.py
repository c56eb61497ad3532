"""Shared pytest fixtures. Add new fixtures below the existing ones, one section each."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


# --- MongoDB ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def mongo_url(tmp_path_factory) -> str:
    """URL of a real MongoDB-wire server for this test session, without a database name.

    ``$GENLAB_TEST_MONGO`` (e.g. ``mongodb://127.0.0.1:27017``) points the tests at a server that is
    already running. Otherwise ``bin/mongo-up`` installs SecantusDB into ``.venv-mongo`` if needed
    (PyPI only) and starts it in memory on a free loopback port; ``bin/mongo-down`` stops it at the
    end of the session. A server that cannot start fails the tests that need it (never a skip).
    Tests should use their own database names so they do not see each other's runs.
    """
    url = os.environ.get("GENLAB_TEST_MONGO")
    if url:
        yield url
        return
    work = tmp_path_factory.mktemp("mongo")
    log = work / "secantusd.log"
    env = {
        **os.environ,
        "MONGO_PORT": str(_free_port()),
        "MONGO_DATA": ":memory:",
        "MONGO_PIDFILE": str(work / "secantusd.pid"),
        "MONGO_LOG": str(log),
    }
    up = subprocess.run([str(REPO / "bin" / "mongo-up")], env=env, capture_output=True, text=True, timeout=900)
    if up.returncode != 0:
        pytest.fail(
            f"bin/mongo-up failed (exit {up.returncode}); server log: {log}\n{up.stderr[-3000:]}",
            pytrace=False,
        )
    try:
        yield up.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([str(REPO / "bin" / "mongo-down")], env=env, check=False, timeout=60)


# --- recorded runs of the disent experiments ------------------------------------------------------

TINY = ["dataset.generated", "dataset.tiny", "training.progress=False", "training.log_every=5"]
TINY_DISENT = [*TINY, "evaluation.factorvae_votes=40"]  # the FactorVAE score's default 2 x 800 votes encode 102k images


def run_experiment(name: str, args: list[str], data_dir: Path, check: bool = True, cwd: Path = REPO,
                   inject: str | None = None):
    """``python -m experiments.<name> ...`` in a subprocess recording under ``data_dir``.

    ``inject``: Python source run in that process before the experiment module (fault injection,
    e.g. patching an objective so that it diverges at a known step on every machine)."""
    env = {**os.environ, "GENLAB_DATA": str(data_dir), "PYTHONWARNINGS": "ignore"}
    env.pop("GENLAB_MONGO", None)
    command = ["-m", f"experiments.{name}"]
    if inject is not None:
        runner = f"import runpy, sys\n{inject}\nsys.argv[0] = {name!r}\nrunpy.run_module('experiments.{name}', run_name='__main__', alter_sys=True)\n"
        command = ["-c", runner]
    proc = subprocess.run([sys.executable, *command, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"experiments.{name} {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


@pytest.fixture(scope="session")
def recorded(tmp_path_factory):
    """A data directory with tiny recorded runs on dSprites recomb2range: two of experiments.disent
    (beta-VAE, FactorVAE) and one ground-truth decoder of experiments.decoders."""
    data = tmp_path_factory.mktemp("genlab-data")
    common = ["dataset.condition=recomb2range", "training.max_iterations=30", "training.eval_every=10",
              "training.checkpoint_every=10", "seed=1"]
    run_experiment("disent", ["with", *TINY_DISENT, *common, "training.beta_vae"], data)
    run_experiment("disent", ["with", *TINY_DISENT, *common, "training.factor_vae", "training.batch_size=32",
                              "training.loss.gamma=20"], data, cwd=REPO / "scripts")
    run_experiment("decoders", ["with", *TINY, *common, "model.kim"], data)
    return data


# --- recorded runs of experiments.fce2d ---------------------------------------------------------

TINY_FCE = ["dataset.n_train=4000", "dataset.n_eval=2000", "training.batch_size=500", "training.max_iterations=40",
            "training.eval_every=20", "training.eval_batch_size=2000", "training.log_every=10",
            "training.checkpoint_every=20", "training.progress=False"]


@pytest.fixture(scope="session")
def fce_runs(tmp_path_factory):
    """Two recorded runs: FCE with MAF on 8gaussians, the Glow-MLE baseline on pinwheel."""
    data = tmp_path_factory.mktemp("fce-data")
    run_experiment("fce2d", ["with", "model.maf", *TINY_FCE, "seed=3"], data)
    run_experiment("fce2d", ["with", "dataset.pinwheel", "model.glow", "training.flow_mle_2d", *TINY_FCE], data)
    return data


# --- notebooks ---------------------------------------------------------------------------------------


def execute_notebook(name: str, env: dict[str, str], cwd: Path) -> str:
    """Execute ``notebooks/<name>`` headless with ``env`` set (restored afterwards); returns its text outputs."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(REPO / "notebooks" / name, as_version=4)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


# --- one torch thread --------------------------------------------------------------------------------


@pytest.fixture
def one_thread():
    """One torch thread for the test (restored after): MIM's image models and the PixelCNN sampler's 784 passes
    over small tensors run faster and steadier on one thread of the 2-core machine. Use with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
