"""The ``dataset`` ingredient of the 2D experiments (fce.md 1): which toy distribution, how many
points, which seed, captured for ``genlab.data.toy2d.load_toy2d``.

``dataset.name`` is a key of ``genlab.data.toy2d.TOY2D``; each is also a named config
(``dataset.8gaussians``, ``dataset.pinwheel`` ...). The training set is drawn once, on the training
device; a separate evaluation sample (seeded differently) carries the true log density where one
exists (8gaussians), for the log-density MSE.
"""

from __future__ import annotations

from sacred import Ingredient

from genlab.data.toy2d import LOG_DENSITIES, TOY2D, load_toy2d

dataset = Ingredient("dataset")


@dataset.config
def config():
    name = "8gaussians"  # genlab.data.toy2d.TOY2D key
    n_train = 500_000  # points drawn once at start-up (fce.md 3.4)
    n_eval = 50_000  # the fixed evaluation sample of the MSE (the original used all training points)
    data_seed = None  # None: the run's seed (the original drew its data from the global seed)


@dataset.config_hook
def check_name(config, command_name, logger):
    TOY2D.get(config["dataset"]["name"])  # unknown name: fails listing the valid ones
    return {}


for _name in TOY2D:
    dataset.add_named_config(_name, {"name": _name})


@dataset.capture
def load_data(device, run_seed, name, n_train, n_eval, data_seed):
    return load_toy2d(name, n_train, n_eval, run_seed if data_seed is None else data_seed, device)


def record_data(run, data, device) -> None:
    """The input shape (for ``load_model``) and the seed the data were drawn with (to redraw them)."""
    run.info.update(input_shape=[2], n_train=len(data.train), n_eval=len(data.eval), data_seed=data.seed, device=str(device))


@dataset.command(unobserved=True)
def show(name, n_train, n_eval):
    """Print the dataset's recipe and sample statistics (``dataset.show with dataset.pinwheel``)."""
    import inspect

    print(f"{name}: {inspect.getdoc(TOY2D.get(name)) or ''}".strip())
    data = load_data("cpu", 0)
    x = data.train.x
    print(f"  {n_train:,} training points, {n_eval:,} evaluation points")
    print(f"  mean {x.mean(0).tolist()}, std {x.std(0).tolist()}")
    print(f"  range [{x.min():.2f}, {x.max():.2f}]; closed-form density: {'yes' if name in LOG_DENSITIES else 'no'}")
