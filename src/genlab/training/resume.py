"""What may change when a run resumes from a checkpoint, and what may not.

A resumed run restores the weights, the optimisers' state (learning rates included), the schedules
and the random generators of the checkpointed run, so a setting given anew on the command line
would be recorded but not used (a new ``training.lr`` is overwritten by the optimiser's restored
one; a new ``seed`` redraws data the weights never saw). So a resume is refused when its config
differs from the checkpointed run's in anything but:

- the run length (``training.epochs``, ``training.max_iterations``, the lengths of ``training.phases``),
- bookkeeping that does not change results (``training.resume``, ``training.resume_changes``,
  ``training.progress``, ``training.progress_every``, ``device``),

unless the user names the changed keys (or a prefix: ``evaluation``) in ``training.resume_changes``.
Allowed learning-rate and optimiser-option changes are applied to the restored optimisers
(``apply_to_optimizers``); every other allowed change takes effect as the run builds it. A resume
that gives no ``seed`` takes the checkpointed run's. The run's config is written next to its
checkpoints (``config.json``) when it starts; runs recorded before that are read from the file
store's ``config.json`` one folder up.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Iterable, Mapping

from genlab.errors import ConfigError
from genlab.training.checkpoints import latest_checkpoint

logger = logging.getLogger("genlab.training")

CONFIG_FILE = "config.json"
RUN_LENGTH = ("training.epochs", "training.max_iterations")
NEVER_COMPARED = ("training.resume", "training.resume_changes", "training.progress", "training.progress_every", "device")
_PHASE_LENGTH = ("iterations", "epochs")


class ResumeRefused(ConfigError):
    """The resumed run's config differs from the checkpointed run's in something not allowed."""


def write_config(checkpoint_dir: str | Path, config: Mapping[str, Any]) -> Path:
    """Keep the run's config beside its checkpoints, for the check of a later resume."""
    path = Path(checkpoint_dir) / CONFIG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_plain(config), indent=1, sort_keys=True, default=repr))
    return path


def checkpointed_config(resume: str | Path) -> tuple[Path, dict | None]:
    """The checkpoint ``resume`` names and the config of the run that wrote it (None if unknown)."""
    from genlab.analysis.runs import _decode

    checkpoint = latest_checkpoint(resume)
    for candidate in (checkpoint.parent / CONFIG_FILE, checkpoint.parent.parent / CONFIG_FILE):
        if candidate.is_file():
            try:
                return checkpoint, _decode(json.loads(candidate.read_text()))
            except ValueError:
                logger.warning("cannot read %s; the resumed config is not checked", candidate)
                return checkpoint, None
    return checkpoint, None


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items() if "__doc__" not in str(k)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _without_lengths(phases: Any) -> Any:
    if not isinstance(phases, list):
        return phases
    return [{k: v for k, v in p.items() if k not in _PHASE_LENGTH} if isinstance(p, Mapping) else p for p in phases]


def _covered(key: str, names: Iterable[str]) -> bool:
    return any(key == n or key.startswith(n + ".") for n in names)


_ABSENT = "(absent)"


def config_changes(recorded: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{dotted key: (recorded value, new value)}`` for every setting that differs and matters."""
    from genlab.analysis.runs import flatten_config

    old, new = flatten_config(_plain(recorded)), flatten_config(_plain(config))
    if "training.phases" in old or "training.phases" in new:
        old["training.phases"] = _without_lengths(old.get("training.phases"))
        new["training.phases"] = _without_lengths(new.get("training.phases"))
    changes = {}
    for key in sorted(set(old) | set(new)):
        if _covered(key, RUN_LENGTH + NEVER_COMPARED):
            continue
        a, b = old.get(key, _ABSENT), new.get(key, _ABSENT)
        if a != b:
            changes[key] = (a, b)
    return changes


def check_resume(recorded: Mapping[str, Any], config: Mapping[str, Any], allowed: Iterable[str], checkpoint: Path) -> dict[str, tuple[Any, Any]]:
    """The allowed changes; raises ``ResumeRefused`` listing the others."""
    allowed = list(allowed)
    changes = config_changes(recorded, config)
    refused = {k: v for k, v in changes.items() if not _covered(k, allowed)}
    if refused:
        listed = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in refused.items())
        names = json.dumps(sorted(refused)).replace('"', "'")
        raise ResumeRefused(
            f"training.resume={checkpoint}: this config differs from the checkpointed run's in {listed}. "
            f"A resume continues the checkpointed run exactly (its optimiser state, lr included, is restored), so these "
            f"would be recorded but not used. Drop them, or allow them with training.resume_changes=\"{names}\""
        )
    return changes


def apply_to_optimizers(changes: Mapping[str, tuple[Any, Any]], optimizers: Mapping[str, Any]) -> list[str]:
    """Apply allowed ``training.lr`` and ``training.optimizer_options.<name>`` changes to the restored
    optimisers' parameter groups; returns the keys applied."""
    applied = []
    for key, (_, value) in changes.items():
        if key == "training.lr":
            field = "lr"
        elif key.startswith("training.optimizer_options."):
            field = key.rsplit(".", 1)[1]
        else:
            continue
        for optimizer in optimizers.values():
            for group in optimizer.param_groups:
                if field in group:
                    group[field] = tuple(value) if isinstance(group[field], tuple) else value
        applied.append(key)
    return applied
