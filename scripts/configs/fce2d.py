"""Configs of flow contrastive estimation on 2D data (Gao et al., CVPR 2020; docs/fce.md).

The defaults are the reference's setting (``training.fce_2d``, also a named config); the flow's
maximum-likelihood baseline is ``training.flow_mle_2d``.
"""


def dataset():
    name = "8gaussians"  # genlab.data.DATASETS key (a 2D toy)
    n_train = 500_000  # points drawn once at start-up (docs/fce.md §3.4)
    n_eval = 50_000  # the fixed evaluation sample of the MSE (the original used all training points)
    data_seed = None  # None: the run's seed (the original drew its data from the global seed)


def fce_2d():
    """Flow contrastive estimation on 2D data as the reference runs it (docs/fce.md §3.4): batch 1000 of
    the 500,000 points, 100 epochs (50,000 iterations), Adam betas (0.9, 0.999), EBM lr 1e-3, flow lr
    7e-4, the flow trained next iff the batch accuracy exceeds 0.6 (the ``fce`` objective's defaults).
    Evaluation (MSE of log densities on the fixed evaluation sample) every 500 iterations. The default
    of ``experiments.fce2d``."""
    objective = "fce"
    batch_size = 1000
    lr = 1e-3
    epochs = 100
    eval_every = 500
    eval_batch_size = 50_000
    log_every = 50
    checkpoint_every = 5000


def flow_mle_2d():
    """The flow alone by maximum likelihood (the paper's Glow-MLE column, docs/fce.md §5), with FCE's
    data, batch, length and the flow's FCE learning rate 7e-4, so that only the objective differs."""
    objective = "flow_mle"
    lr = 7e-4


FCE2D = {"training": (fce_2d, flow_mle_2d)}
