"""Configs of the ICE-BeeM nonlinear ICA simulations (Khemakhem et al., NeurIPS 2020, section 5.1
and figure panels (e), (f); docs/icebeem.md §2, §5a).

One run = one method on one cell of the grid: ``dataset.tcl`` or ``dataset.imca``,
``dataset.options.n_layers`` L in {2, 4}, ``dataset.options.n_per_segment`` n in {100, 200, 500,
1000, 2000}, the model's ``seed`` in 0..9, the data seed fixed to 1. The method is the training named
config: ``training.icebeem`` (the default), ``training.ivae`` or ``training.tcl``; the model kind
follows the objective. Every method's model depth follows the data's L, as in the original.
"""


def dataset():
    name = "tcl"  # genlab.data.DATASETS key: "tcl" (the paper's "TCL" data) or "imca"
    data_seed = 1  # the paper's data seed, the same for every model seed (docs/icebeem.md §6)


def fce_schedule(rounds=3, cutoff=0.5, eps=0.025, lr_ebm=3e-4, lr_flow=1e-5, lr_pretrain=1e-4):
    """The original's 4-phase schedule (docs/icebeem.md §4a) as phases: flow MLE for 1 epoch; the EBM's W
    and c for at most 15 epochs; the whole EBM for at most 50; then ``rounds`` times the flow for at most
    5 epochs (until the EBM's accuracy drops below cutoff - eps) and the EBM for at most 50 (until it
    exceeds cutoff + eps). Each EBM phase from the third on ends with an evaluation (the original's
    four readouts)."""
    above = {"metric": "accuracy", "above": cutoff}
    phases = [
        {"name": "flow_mle", "epochs": 1, "optimizers": ["flow"], "lr": {"flow": lr_pretrain}},
        {"name": "ebm_g", "epochs": 15, "optimizers": ["ebm_g"], "lr": {"ebm_g": lr_pretrain}, "stop": above},
        {"name": "ebm", "epochs": 50, "optimizers": ["ebm"], "lr": {"ebm": lr_pretrain}, "stop": above, "evaluate": True},
    ]
    for k in range(1, rounds + 1):
        phases.append({"name": f"flow_{k}", "epochs": 5, "optimizers": ["flow"], "lr": {"flow": lr_flow},
                       "stop": {"metric": "accuracy", "below": cutoff - eps}})  # fmt: skip
        phases.append({"name": f"ebm_{k}", "epochs": 50, "optimizers": ["ebm"], "lr": {"ebm": lr_ebm},
                       "stop": {"metric": "accuracy", "above": cutoff + eps}, "evaluate": True})  # fmt: skip
    return phases


def icebeem():
    """ICE-BeeM by conditional flow contrastive estimation as the original trains it on the simulations
    (docs/icebeem.md §4a, §5a): Adam, the 4-phase schedule of ``fce_schedule`` (lrs 1e-4, then 1e-5 for the
    flow and 3e-4 for the EBM), batches of 64 data points joined by 64 points of the phase's fixed
    noise set (the original's 128-point batches of the shuffled union), the MCC readouts after each
    EBM phase. The default of ``experiments.icebeem_sim``."""
    objective = "icebeem_fce"
    batch_size = 64
    lr = 1e-4
    phases = fce_schedule()
    eval_every = "phase"
    log_every = 100
    checkpoint_every = 2000


def icebeem_original():
    """``training.icebeem`` with the original's flow step, which scored the EBM without its augmentation
    term (docs/icebeem.md §10.11); the published numbers were made this way."""
    loss = {"flow_energy": "plain"}


def ivae():
    """iVAE (Khemakhem, Kingma, Monti & Hyvärinen, AISTATS 2020) as the ICE-BeeM simulations train it
    (docs/icebeem.md §3d, §5a): Adam lr 1e-3, batch 256, 70,000 iterations finishing the epoch they end
    in, the learning rate x0.1 after 20 epochs without improvement of the epoch-mean -ELBO."""
    objective = "ivae"
    batch_size = 256
    lr = 1e-3
    phases = [{"name": "train", "iterations": 70_000, "finish_epoch": True}]
    scheduler = "plateau"
    scheduler_options = {"metric": "loss", "factor": 0.1, "patience": 20}
    eval_every = 10_000
    log_every = 500
    checkpoint_every = 10_000


def tcl():
    """TCL (Hyvärinen & Morioka, NeurIPS 2016) as the ICE-BeeM simulations train it (docs/icebeem.md §3e,
    §5a): SGD with momentum 0.9, lr 0.01, batch 512, 10,000 iterations of the MLR alone on the random
    feature MLP, then 20,000 of everything; weight decay 1e-4 on the weights (the objective's); the
    readouts from an exponential moving average of the weights with TensorFlow's decay min(0.9999,
    (1 + t) / (10 + t)) at a stage's t-th step. The learning-rate decay of the original (x0.1 every
    50,000 steps) is never reached."""
    objective = "tcl"
    batch_size = 512
    lr = 0.01
    optimizer = "sgd"
    optimizer_options = {"momentum": 0.9}
    phases = [{"name": "mlr", "iterations": 10_000, "optimizers": ["mlr"]},
              {"name": "all", "iterations": 20_000, "optimizers": ["all"]}]  # fmt: skip
    ema = 0.9999
    ema_warmup = True
    evaluate_ema = True
    eval_every = 10_000
    log_every = 500
    checkpoint_every = 10_000


def original_spline():
    """ICE-BeeM's flow with the original's spline parametrisation, squashed twice (every inner
    derivative >= 0.694; docs/icebeem.md §3c and ``genlab.models.flows.nsf``); with
    ``training.icebeem_original``, the setting in which the published numbers were made."""
    options = {"flow_options": {"pre_squash": True}}


ICEBEEM_SIM = {"training": (icebeem, icebeem_original, ivae, tcl), "model": (original_spline,)}
