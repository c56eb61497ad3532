"""Measure the README's quick start from a clean clone and rewrite the README's figures from it.

    .venv/bin/python scripts/measure_quickstart.py                # everything: about 25 min of 2 cores
    .venv/bin/python scripts/measure_quickstart.py --skip-setup --skip-tests

In a temporary directory it clones this repository (its committed HEAD: commit first), then times
``bin/setup`` (a fresh ``.venv`` from PyPI), ``bin/demo`` (with that ``.venv``) and ``bin/test``,
each with the load average just before it; measures the ``.venv``'s disk use (all of it, the CUDA
libraries ``site-packages/nvidia*`` and ``cuda*``, and Triton); reads the demo's final metrics from
its recorded run (``genlab.analysis.runs.load_runs`` on the clone's ``data/sims/disent``); records
the machine (cores, CPU model, torch's CPU capability and threads, GPU, Python, date). It writes
``docs/measured/quickstart.json`` and rewrites the README's ``<!-- measured: quickstart -->`` block
from it (``measured_block.render_quickstart``).

``--skip-setup`` reuses this checkout's ``.venv`` (linked into the clone; it must be set up for the
clone's ``pyproject.toml``, and being an editable install it imports this checkout's code);
``--skip-tests`` leaves ``bin/test`` out. A skipped step is recorded as not measured.
``--render-only`` measures nothing and rewrites the README's block from the JSON as it is.
``--demo-args KEY=VALUE ...`` are passed to ``bin/demo`` (recorded, and shown in the README):
for checking this script with a short demo, never for the README's figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from measured_block import render_quickstart, with_block

REPO = Path(__file__).resolve().parents[1]
SHOWN_SPLITS = ("train", "val", "test")  # the demo's metrics that it prints and we record
TORCH_FACTS = (
    "import json, torch; print(json.dumps({'torch': torch.__version__, 'torch_threads': torch.get_num_threads(), "
    "'cpu_capability': torch.backends.cpu.get_cpu_capability(), "
    "'cuda_device': torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}))"
)


def clean_env(data_dir: Path) -> dict[str, str]:
    """The environment a new user has: no genlab settings, no activated venv; data under the clone."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GENLAB_") and k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    venv = os.environ.get("VIRTUAL_ENV")
    if venv:
        env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(venv))
    env["GENLAB_DATA"] = str(data_dir)  # the reused .venv of --skip-setup would otherwise write into its checkout
    return env


def timed(step: str, command: list[str], cwd: Path, env: dict[str, str], logs: Path) -> dict:
    """Run ``command``, its output to ``logs/<step>.log``; wall seconds, exit status, load before."""
    load = [round(v, 2) for v in os.getloadavg()]
    print(f"[measure] {step}: {' '.join(command)} (load average {load})", file=sys.stderr, flush=True)
    with open(logs / f"{step}.log", "w") as log:
        start = time.monotonic()
        status = subprocess.run(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
        seconds = time.monotonic() - start
    print(f"[measure] {step}: {seconds:.0f} s, exit status {status}", file=sys.stderr, flush=True)
    return {"seconds": [round(seconds, 1)], "exit_status": status, "load_average_before": load}


def disk_use(paths: list[Path]) -> int:
    """Bytes on disk (allocated blocks, as ``du``) of the files under ``paths``, hard links once."""
    seen, total = set(), 0
    for top in paths:
        for path in [top, *top.rglob("*")] if top.is_dir() else [top]:
            st = path.lstat()
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def venv_disk(venv: Path) -> dict[str, int]:
    """Bytes on disk of a venv: all of it, the CUDA libraries (site-packages/nvidia*, cuda*), Triton."""
    site = sorted(venv.glob("lib/python*/site-packages"))
    cuda = [p for s in site for pattern in ("nvidia*", "cuda*") for p in s.glob(pattern)]
    triton = [p for s in site for p in s.glob("triton*")]
    return {"total": disk_use([venv]), "cuda": disk_use(cuda), "triton": disk_use(triton)}


def in_gib(sizes: dict[str, int]) -> dict[str, float]:
    return {f"{part}_gib": round(size / 2**30, 2) for part, size in sizes.items()}


def demo_metrics(sims: Path) -> dict:
    """The final train/val/test metrics of the newest completed disent run under ``sims``."""
    from genlab.analysis.runs import load_runs

    runs = load_runs(sims, experiment="disent", status="COMPLETED")
    if runs.empty:
        raise SystemExit(f"the demo recorded no completed run under {sims}")
    run = runs.iloc[-1]["run"]
    final = run.final_metrics()
    return {"run_id": run.run_id, "metrics": {k: v for k, v in sorted(final.items()) if k.split(".")[0] in SHOWN_SPLITS}}


def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def conditions(venv_python: Path, clone: Path, env: dict[str, str]) -> dict:
    facts = json.loads(subprocess.run([str(venv_python), "-c", TORCH_FACTS], env=env, capture_output=True, text=True,
                                      check=True).stdout.splitlines()[-1])
    commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=clone, capture_output=True, text=True,
                            check=True).stdout.strip()
    python = subprocess.run([str(venv_python), "-c", "import platform; print(platform.python_version())"],
                            capture_output=True, text=True, check=True).stdout.strip()
    return {"cores": len(os.sched_getaffinity(0)), "cpu_model": cpu_model(), **facts, "python": python,
            "commit": commit, "platform": platform.platform()}


def reuse_venv(clone: Path) -> None:
    """Link this checkout's .venv into the clone, if it is set up for the clone's pyproject.toml."""
    venv = REPO / ".venv"
    want = hashlib.sha256((clone / "pyproject.toml").read_bytes()).hexdigest()
    stamp = venv / ".genlab-installed"
    if not stamp.is_file() or stamp.read_text().strip() != want:
        raise SystemExit(f"--skip-setup: {venv} is not set up for the clone's pyproject.toml (run bin/setup here first)")
    (clone / ".venv").symlink_to(venv)


def measure(args, work: Path) -> dict:
    clone, logs = work / "genlab", work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "clone", "--quiet", str(args.repo), str(clone)], check=True)
    env = clean_env(clone / "data")
    started = datetime.now(timezone.utc)
    timings = {}
    if args.skip_setup:
        reuse_venv(clone)
    else:
        timings["setup"] = timed("setup", ["bin/setup"], clone, env, logs)
        if timings["setup"]["exit_status"]:
            raise SystemExit(f"bin/setup failed; see {logs / 'setup.log'}")
    timings["demo"] = timed("demo", ["bin/demo", *args.demo_args], clone, env, logs)
    if timings["demo"]["exit_status"]:
        raise SystemExit(f"bin/demo failed; see {logs / 'demo.log'}")
    demo = {"args": list(args.demo_args), **demo_metrics(clone / "data" / "sims" / "disent")}
    if not args.skip_tests:
        timings["test"] = timed("test", ["bin/test"], clone, env, logs)
    venv = (clone / ".venv").resolve()
    return {
        "measured_by": "`scripts/measure_quickstart.py` in a clean clone",
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "conditions": conditions(venv / "bin" / "python", clone, env),
        "timings": timings,
        "demo": demo,
        "venv": {**in_gib(venv_disk(venv)), "reused": args.skip_setup},
    }


def write(measured: dict, json_path: Path, readme: Path) -> None:
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(measured, indent=2) + "\n")
    readme.write_text(with_block(readme.read_text(), "quickstart", render_quickstart(measured)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-setup", action="store_true", help="reuse this checkout's .venv instead of timing a fresh one")
    parser.add_argument("--skip-tests", action="store_true", help="leave bin/test out")
    parser.add_argument("--repo", type=Path, default=REPO, help="repository to clone (default: this one)")
    parser.add_argument("--json", type=Path, default=REPO / "docs" / "measured" / "quickstart.json")
    parser.add_argument("--readme", type=Path, default=REPO / "README.md", help="README whose block is rewritten")
    parser.add_argument("--workdir", type=Path, default=None, help="an empty directory to clone into, kept afterwards "
                        "(default: a temporary directory, removed unless --keep)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary clone, its .venv and the step logs")
    parser.add_argument("--demo-args", nargs="*", default=[], metavar="KEY=VALUE", help="passed to bin/demo (checks only)")
    parser.add_argument("--render-only", action="store_true", help="measure nothing: rewrite the README's block from --json")
    args = parser.parse_args(argv)
    if args.render_only:
        write(json.loads(args.json.read_text()), args.json, args.readme)
        return
    work = args.workdir or Path(tempfile.mkdtemp(prefix="genlab-quickstart-"))
    try:
        measured = measure(args, work)
    except BaseException:
        print(f"[measure] kept {work} (step logs under logs/)", file=sys.stderr)
        raise
    write(measured, args.json, args.readme)
    print(f"[measure] wrote {args.json} and the quickstart block of {args.readme}", file=sys.stderr)
    if args.keep or args.workdir:
        print(f"[measure] kept {work}", file=sys.stderr)
    else:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
