"""The README's measured blocks: text between ``<!-- measured: NAME -->`` and ``<!-- /measured -->``,
rendered from a measurement's JSON (``docs/measured/NAME.json``) by one function, so that the README
says exactly what the measurement recorded.

``render_quickstart`` renders ``docs/measured/quickstart.json`` (written by
``scripts/measure_quickstart.py``); ``block_body`` reads a block, ``with_block`` replaces it.
``tests/test_readme_figures.py`` checks that the README's block equals the rendering of the JSON.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

END = "<!-- /measured -->"

STEPS = (  # (key in "timings", what the README calls it)
    ("setup", "`bin/setup`: a fresh `.venv` from PyPI"),
    ("demo", "`bin/demo` with `.venv` in place"),
    ("test", "`bin/test` (the fast suite)"),
)
DEMO_METRICS = (  # (metric, how the README names it)
    ("train.recon_nll", "train NLL"),
    ("test.recon_nll", "test NLL"),
    ("train.dci_disentanglement", "DCI disentanglement"),
)
NOT_RECORDED = "not recorded"


def start_marker(name: str) -> str:
    return f"<!-- measured: {name} -->"


def _block_span(text: str, name: str) -> tuple[int, int]:
    """Start and end offsets of the block's body (between the two markers)."""
    start = start_marker(name)
    if text.count(start) != 1:
        raise ValueError(f"expected exactly one {start!r} marker, found {text.count(start)}")
    body_start = text.index(start) + len(start)
    body_end = text.find(END, body_start)
    if body_end < 0:
        raise ValueError(f"{start!r} has no closing {END!r}")
    return body_start, body_end


def block_body(text: str, name: str) -> str:
    """The text between the block's markers, without the newlines next to them."""
    body_start, body_end = _block_span(text, name)
    return text[body_start:body_end].strip("\n")


def with_block(text: str, name: str, body: str) -> str:
    """``text`` with the block's body replaced by ``body`` (markers kept, each on its own line)."""
    body_start, body_end = _block_span(text, name)
    return f"{text[:body_start]}\n{body.strip(chr(10))}\n{text[body_end:]}"


# --- formatting -----------------------------------------------------------------------------------


def duration(seconds: float) -> str:
    """``249`` -> ``4 min 09 s``; under a minute ``42 s``."""
    whole = round(seconds)
    minutes, rest = divmod(whole, 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def durations(seconds: Sequence[float]) -> str:
    """One duration, or the range of several measurements of the same step."""
    if len(seconds) == 1 or min(seconds) == max(seconds):
        return duration(seconds[0])
    return f"{duration(min(seconds))} to {duration(max(seconds))}"


def _or_not_recorded(value: Any, fmt: str = "{}") -> str:
    return NOT_RECORDED if value is None else fmt.format(value)


def _load(load: Sequence[float] | None) -> str:
    return NOT_RECORDED if not load else " / ".join(f"{v:.2f}" for v in load)


CONDITIONS = (  # (key in "conditions", how the README names it, format)
    ("cores", "CPU cores", "{}"),
    ("cpu_model", "CPU", "{}"),
    ("cpu_capability", "torch CPU capability", "`{}`"),
    ("torch", "torch", "{}"),
    ("torch_threads", "torch threads", "{}"),
    ("cuda_device", "GPU", "{}"),
    ("python", "Python", "{}"),
    ("commit", "commit", "`{}`"),
)


def _conditions(c: Mapping[str, Any]) -> str:
    """``CPU cores 2, ..., GPU none, ...``; the conditions the measurement did not record named at the end."""
    shown, missing = [], []
    for key, label, fmt in CONDITIONS:
        if key == "cuda_device" and "cuda_device" in c and c[key] is None:
            shown.append(f"{label} none")
        elif c.get(key) is None:
            missing.append(label)
        else:
            shown.append(f"{label} {fmt.format(c[key])}")
    if missing:
        shown.append(f"{NOT_RECORDED}: {', '.join(missing)}")
    return "; ".join(shown)


def _timing_row(label: str, timing: Mapping[str, Any] | None) -> str:
    if timing is None:
        return f"| {label} | not measured this time | |"
    time = durations(timing["seconds"])
    if timing.get("exit_status"):
        time += f" (failed: exit status {timing['exit_status']})"
    if timing.get("note"):
        time += f" ({timing['note']})"
    return f"| {label} | {time} | {_load(timing.get('load_average_before'))} |"


def _gib(value: float | None) -> str:
    return _or_not_recorded(value, "{:.1f} GiB")


def _demo_sentence(demo: Mapping[str, Any] | None) -> str:
    if not demo or not demo.get("metrics"):
        return "The demo's metrics were not measured this time."
    digits = demo.get("rounded_to") or 2
    shown = [f"{label} {demo['metrics'][key]:.{digits}f}" for key, label in DEMO_METRICS if key in demo["metrics"]]
    args = f" with `{' '.join(demo['args'])}`" if demo.get("args") else ""
    run = f" (recorded run {demo['run_id']})" if demo.get("run_id") is not None else ""
    return (f"The demo's run{args}{run} ends at {', '.join(shown)} (NLL in nats per image); "
            "`bin/test --slow` re-runs the demo and checks these metrics wherever torch reports the CPU capability "
            "recorded here.")


def _venv_sentence(venv: Mapping[str, Any] | None) -> str:
    if not venv:
        return "The disk use of `.venv` was not measured this time."
    triton = f", and {_gib(venv['triton_gib'])} Triton" if venv.get("triton_gib") is not None else ""
    reused = (" This `.venv` was the measuring checkout's own (`--skip-setup`): the demo ran that checkout's code, "
              "which may differ from the commit.") if venv.get("reused") else ""
    return (f"`.venv` takes {_gib(venv.get('total_gib'))} of disk, of which {_gib(venv.get('cuda_gib'))} are CUDA "
            f"libraries (`site-packages/nvidia*`, `cuda*`){triton}; a CPU-only torch (below) leaves them out.{reused}")


def render_quickstart(measured: Mapping[str, Any]) -> str:
    """The README's quick-start figures from ``docs/measured/quickstart.json``."""
    conditions = measured.get("conditions") or {}
    timings = measured.get("timings") or {}
    lines = [
        f"Measured by {measured['measured_by']}, {measured.get('date') or 'date not recorded'}; "
        f"machine: {_conditions(conditions)}.",
        "",
        "| step | wall time | load average before (1 / 5 / 15 min) |",
        "|---|---|---|",
        *(_timing_row(label, timings.get(key)) for key, label in STEPS),
        "",
        _demo_sentence(measured.get("demo")),
        _venv_sentence(measured.get("venv")),
    ]
    if measured.get("note"):
        lines += ["", f"*{measured['note']}*"]
    return "\n".join(lines)

