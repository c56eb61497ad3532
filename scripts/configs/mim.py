"""Configs of MIM's toy and PCA experiments (Livne, Swersky & Fleet 2019, "MIM: Mutual Information
Machine"; docs/mim.md §0, §4.1, §5.1).

One run = one loss on one dataset at one width / latent size and seed. The experiments E1-E5 of the
original's README are experiment-level named configs (``e1_mim``, ``e2``, ...) setting the data, the
model and the schedule together; the loss is a training named config: ``training.mim`` (S-MIM, the
default), ``training.amim`` (A-MIM), ``training.vae``, ``training.ae``, ``training.mim_inv_h`` (MIM - H)
and ``training.vae_inv_h`` (VAE + H). The sweeps (mid_dim or z_dim x seeds 1..10) are ``bin/mim/e*.sh``.

``training.warmup`` (the original's ``--warmup-steps``, in epochs) is one number that sets four things
at once, as in the original (docs/mim.md §4.1, §9.1): beta's annealing (``training.loss.warmup``), the
Noam learning-rate warm-up (stepped per epoch), the early-stopping patience (stop once the best epoch
is more than ``warmup`` epochs old: Ignite's ``EarlyStopping`` with patience warmup + 1) and the gate of
model selection and early stopping (only epochs >= warmup count). Change it, and all four follow.
"""


def dataset():
    name = "toy4"  # genlab.data.DATASETS key: toy4, toy4_20, toyMIM, toyVAE, toyAE, pca_fashion_mnist20


def mim_training():
    """The original's ``src/vae-as-mim-dataset.py`` defaults with E2's flags (docs/mim.md §0, §4.1,
    §5.1): Adam (0.9, 0.999) at 1e-3 under the per-epoch Noam schedule, batch 128, at most 200 epochs,
    a test pass after every epoch (the loss at beta = 1, with the S-MIM decoding pass), the best test
    loss from epoch ``warmup`` on kept and evaluated at the end."""
    warmup = 3  # epochs: beta's annealing, the Noam warm-up, the early-stopping patience and gate (see above)
    objective = "mim"
    loss = {"warmup": warmup}
    batch_size = 128
    eval_batch_size = 128  # the test loader's batches: 78 of 128 = 9,984 points a pass
    lr = 1e-3
    epochs = 200
    scheduler = "noam"
    scheduler_options = {"warmup": warmup, "unit": "epoch"}
    eval_every = "epoch"
    select = "val.loss"
    select_after_epochs = warmup  # the original saves only once epoch >= warmup (1-based)
    early_stopping_patience = warmup + 1  # it stops when epoch - best_epoch > warmup
    evaluate_best = True
    log_every = 78
    checkpoint_every = 780


# the losses (training named configs, docs/mim.md §3.2)
def mim():
    """S-MIM (``--mim-loss --mim-samp``): the encoding pass, and the decoding pass once beta >= 1."""
    objective = "mim"
    loss = {"sample": True}


def amim():
    """A-MIM (``--mim-loss``, the code's "MIM + VAE Sampling"): the encoding pass only."""
    objective = "mim"
    loss = {"sample": False}


def vae():
    """The VAE with the one-sample KL (the original's default loss)."""
    objective = "vae_mc"


def ae():
    """The auto-encoder (``--ae-loss``): a delta encoder, beta = 0."""
    objective = "ae"


def mim_inv_h():
    """MIM - H (``--mim-loss --mim-samp --inv-H-loss``, E3): the joint-entropy term removed."""
    objective = "mim"
    loss = {"sample": True, "inv_H": True}


def vae_inv_h():
    """VAE + H (``--inv-H-loss``, E3): the joint-entropy term added."""
    objective = "vae_mc"
    loss = {"inv_H": True}


# the experiments of the README (experiment-level named configs, docs/mim.md §0)
def e1_mim():
    """E1, the animation's MIM panel: S-MIM on toyMIM, z_dim 2, mid_dim 50, 49 epochs, warm-up 25, seed 1;
    every epoch's 200-point view kept (``training.loss.frames``, the original's ``--vis-progress``)."""
    dataset = {"name": "toyMIM"}
    model = {"options": {"z_dim": 2, "mid_dim": 50}}
    training = {"objective": "mim", "loss": {"sample": True, "frames": True}, "epochs": 49, "warmup": 25}
    seed = 1


def e1_vae():
    """E1, the VAE panel: the VAE on toyVAE, as ``e1_mim`` otherwise."""
    dataset = {"name": "toyVAE"}
    model = {"options": {"z_dim": 2, "mid_dim": 50}}
    training = {"objective": "vae_mc", "loss": {"frames": True}, "epochs": 49, "warmup": 25}
    seed = 1


def e1_ae():
    """E1, the AE panel: the auto-encoder on toyAE, as ``e1_mim`` otherwise."""
    dataset = {"name": "toyAE"}
    model = {"options": {"z_dim": 2, "mid_dim": 50}}
    training = {"objective": "ae", "loss": {"frames": True}, "epochs": 49, "warmup": 25}
    seed = 1


def e2():
    """E2, expressiveness: toy4, z_dim 2, 200 epochs, warm-up 3; sweep model.options.mid_dim over
    5, 20, 50, 100, 200, 300, 400, 500 with training.mim vs training.vae, seeds 1..10."""
    dataset = {"name": "toy4"}
    model = {"options": {"z_dim": 2}}
    training = {"epochs": 200, "warmup": 3}


def e3():
    """E3, the entropy regulariser: E2's settings with the inverted entropy term, training.mim (MIM - H)
    vs training.vae (VAE + H), the same as training.mim_inv_h and training.vae_inv_h."""
    dataset = {"name": "toy4"}
    model = {"options": {"z_dim": 2}}
    training = {"epochs": 200, "warmup": 3, "loss": {"inv_H": True}}


def e4():
    """E4, the bottleneck on synthetic data: toy4_20, mid_dim 50, 200 epochs, warm-up 3; sweep
    model.options.z_dim over 2, 4, ..., 20 with training.mim vs training.vae."""
    dataset = {"name": "toy4_20"}
    model = {"options": {"mid_dim": 50}}
    training = {"epochs": 200, "warmup": 3}


def e5():
    """E5, the bottleneck on real data: pca_fashion_mnist20 (PCA fitted on the training split; the
    original's per-split fit is ``dataset.options.pca_fit=per_split``), as E4 otherwise."""
    dataset = {"name": "pca_fashion_mnist20"}
    model = {"options": {"mid_dim": 50}}
    training = {"epochs": 200, "warmup": 3}


EXPERIMENTS = (e1_mim, e1_vae, e1_ae, e2, e3, e4, e5)
MIM = {"training": (mim, amim, vae, ae, mim_inv_h, vae_inv_h)}
