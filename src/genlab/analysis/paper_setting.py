"""Whether a recorded run was trained and evaluated in its paper's setting, and what differs if not.

Tables and figures that put genlab's numbers next to a paper's (``genlab.analysis.disent``,
docs/disent.md §7; ``genlab.analysis.fce2d``, docs/fce.md §4.2) use only runs in the paper's
setting, and list the others apart, each marked with what differs (``differs_from_paper``,
e.g. ``"dataset.tiny=True (paper: False); training.max_iterations=200 (paper: training.epochs=30)"``).

A run is in its paper's setting when its config matches, on every setting that changes what its
numbers mean, what its experiment's default configs give:

- the data: full size and the real source: ``dataset.tiny`` and, per paper, ``dataset.source`` and
  ``dataset.strides`` (the published files, the whole factor grid; docs/disent.md §1) or
  ``dataset.n_train`` and ``dataset.n_eval`` (docs/fce.md §3.4);
- the run length: the phases ``training.phases`` / ``max_iterations`` / ``epochs`` make
  (``genlab.training.phases.parse_phases``; docs/disent.md §4.1, docs/fce.md §7);
- not a smoke run: ``training.smoke`` false;
- full evaluations: every option of the evaluations the run ran (``evaluation.run``) at its default,
  ``batch_size`` aside (``evaluation.max_examples``, ``factorvae_votes``, ``dci_samples``, ``samples`` ...).

What a paper's sweep varies (dataset, split, model, objective and its hyperparameters, seed) is not
compared. The paper's values come from one place: the default config functions of
``scripts/configs/<paper>.py`` (read as Sacred reads them, without Sacred), composed per
experiment as ``scripts/experiments/<experiment>.py`` composes them, and the evaluations' own
keyword defaults (``genlab.evaluations``).
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import pandas as pd
from configs import disent as disent_configs
from configs import fce2d as fce2d_configs
from configs import symvae as symvae_configs

from genlab.analysis.runs import MISSING, canonical, lookup
from genlab.evaluations.base import evaluation_options
from genlab.training.phases import parse_phases

DIFFERS = "differs_from_paper"  # the column that marks a run outside its paper's setting ("" inside it)

# the shared switches' defaults in scripts/ingredients/dataset.py and training.py (``_common``; those
# modules import Sacred, so they are restated here): a full-size, full-length run
FULL_SIZE = {"dataset.tiny": False, "training.smoke": False}
RUN_LENGTH = ("training.phases", "training.max_iterations", "training.epochs")  # in parse_phases' order of precedence
NOT_COMPARED_EVALUATION_OPTIONS = ("batch_size", "fid_batch_size")  # how many examples at a time: the numbers are the same


@dataclass(frozen=True)
class PaperDefaults:
    """An experiment's default config functions (as its ``genlab_experiment(...)`` call lists them)
    and the data settings of its paper's setting."""

    dataset: Callable[[], None]
    training: tuple[Callable[[], None], ...]
    data_keys: tuple[str, ...]
    cite: str


EXPERIMENTS = {
    "disent": PaperDefaults(disent_configs.dataset, (disent_configs.training,), ("source", "strides"),
                            "docs/disent.md §4.1, §7"),
    "decoders": PaperDefaults(disent_configs.dataset, (disent_configs.training, disent_configs.gt_decoder),
                              ("source", "strides"), "docs/disent.md §2.3, §4.1, §7"),
    "fce2d": PaperDefaults(fce2d_configs.dataset, (fce2d_configs.fce_2d,), ("n_train", "n_eval"),
                           "docs/fce.md §3.4, §4.2, §7"),
    "symvae": PaperDefaults(symvae_configs.dataset, (symvae_configs.sym,), ("source",), "docs/symvae.md §3.2, §5"),
}  # fmt: skip


def config_values(fn: Callable[[], None]) -> dict[str, Any]:
    """The settings a config function's body assigns, docstring aside: what Sacred's ``ConfigScope``
    reads from it, evaluated here without Sacred (library code never imports it)."""
    body = ast.parse(textwrap.dedent(inspect.getsource(fn))).body[0].body
    namespace: dict[str, Any] = {}
    exec(compile(ast.Module(body=body, type_ignores=[]), inspect.getsourcefile(fn), "exec"), dict(fn.__globals__), namespace)
    return {k: v for k, v in namespace.items() if not k.startswith("_")}


def paper_defaults(experiment: str) -> PaperDefaults:
    if experiment not in EXPERIMENTS:
        raise ValueError(f"no paper setting is known for experiment {experiment!r}; known: {', '.join(sorted(EXPERIMENTS))}")
    return EXPERIMENTS[experiment]


def reference_setting(experiment: str, evaluations: Sequence[str] = ()) -> dict[str, Any]:
    """The paper's setting of ``experiment`` as ``{dotted config key: value}``: the data keys, the
    shared switches, the run length (``training.phases``, ``max_iterations``, ``epochs``) and the
    options of the named ``evaluations`` with their defaults."""
    defaults = paper_defaults(experiment)
    dataset = config_values(defaults.dataset)
    training = {"phases": None, "max_iterations": None, "epochs": None}
    for fn in defaults.training:
        training.update(config_values(fn))
    options = evaluation_options(evaluations)
    return {
        **{f"dataset.{k}": dataset.get(k) for k in defaults.data_keys},
        **FULL_SIZE,
        **{key: training[key.split(".", 1)[1]] for key in RUN_LENGTH},
        **{f"evaluation.{k}": canonical(v) for k, v in options.items() if k not in NOT_COMPARED_EVALUATION_OPTIONS},
    }


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


def _run_length(setting: Mapping[str, Any]) -> tuple[list, str] | None:
    """The phases a run-length setting makes and how to say it (its deciding key), None if unreadable."""
    values = {key: setting.get(key) for key in RUN_LENGTH}
    try:
        phases = parse_phases(values["training.phases"], iterations=values["training.max_iterations"], epochs=values["training.epochs"])
    except (TypeError, ValueError):
        return None
    deciding = next((key for key in RUN_LENGTH if values[key] is not None), "training.epochs")
    return phases, f"{deciding}={_shown(canonical(values[deciding]))}"


def differences(config: Mapping[str, Any], experiment: str) -> list[str]:
    """What in a recorded run's ``config`` differs from its paper's setting, one ``"key=value
    (paper: value)"`` per setting (an unrecorded key counts as different); [] in the paper's setting."""
    evaluations = lookup(config, "evaluation.run")
    evaluations = list(evaluations) if isinstance(evaluations, (list, tuple)) else []
    reference = reference_setting(experiment, evaluations)
    out = []
    for key, paper in reference.items():
        if key in RUN_LENGTH:
            continue
        value = lookup(config, key)
        if value is MISSING:
            out.append(f"{key} not recorded (paper: {_shown(paper)})")
        elif canonical(value) != paper:
            out.append(f"{key}={_shown(canonical(value))} (paper: {_shown(paper)})")
    ours = _run_length({key: lookup(config, key) for key in RUN_LENGTH if lookup(config, key) is not MISSING})
    paper_length = _run_length(reference)
    if ours is None:
        out.append(f"run length not recorded (paper: {paper_length[1]})")
    elif ours[0] != paper_length[0]:
        out.append(f"{ours[1]} (paper: {paper_length[1]})")
    return out


def differs_from_paper(run) -> str:
    """A recorded run's differences from its paper's setting, joined by "; " ("" in the setting)."""
    return "; ".join(differences(run.config, run.experiment))


def split_runs(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(paper-setting rows, other rows)`` of a runs table. The marks are its ``differs_from_paper``
    column if it has one, else computed from its ``run`` column (``load_runs`` handles); the paper
    rows come without that column, the other rows with it."""
    marks = table[DIFFERS] if DIFFERS in table else pd.Series([differs_from_paper(r) for r in table["run"]], index=table.index, dtype=object)
    marks = marks.fillna("").astype(str)
    inside = marks == ""
    paper = table[inside].drop(columns=[DIFFERS], errors="ignore").reset_index(drop=True)
    others = table[~inside].assign(**{DIFFERS: marks[~inside]}).reset_index(drop=True)
    return paper, others
