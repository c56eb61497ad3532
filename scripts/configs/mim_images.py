"""Configs of MIM's image experiments (Livne, Swersky & Fleet 2019, "MIM: Mutual Information Machine";
docs/mim.md §0 E6, §1.5, §2.2, §3.3, §4.2, §5.2, §6.3).

One run = one model x objective x prior on one dataset and seed:

- the dataset, an experiment-level named config: ``dynamic_mnist`` (the default), ``dynamic_fashion_mnist``
  or ``omniglot``: binary images re-binarised by Bernoulli sampling at every training batch
  (``dataset.transforms``), validation and test binarised once (the same draw at every pass,
  seeded 777 as the original);
- the architecture, ``model.convhvae`` (the default) or ``model.pixelhvae``, and the prior,
  ``model.vampprior`` (the default: 500 pseudo-inputs initialised from the first 500 training
  images, the original's ``--use_training_data_init``) or ``model.standard``;
- the objective, ``training.vae`` (the default), ``training.amim`` or ``training.smim``.

The README's grid (``bin/mim/images.sh``) is convHVAE with VAE and S-MIM, PixelHVAE with VAE and
A-MIM, each with both priors and seeds 1..10. The schedule is the original's: AdamNormGrad at 5e-4,
batch 100, at most 2,000 epochs, beta warmed up over ``training.warmup`` = 100 epochs, the best
validation loss kept (the MIM loss for MIM models, -ELBO for VAEs), early stopping once 51 epochs
pass without improvement, the counter held at 0 during the warm-up, and a stop on NaN.
"""

BINARIZE = "binarize"  # x ~ Bernoulli(grey value), per batch (genlab.data.transforms)
WARMUP = 100  # epochs of beta's annealing; also when the early-stopping counter starts (docs/mim.md §4.2)


def dataset():
    name = "mnist"  # genlab.data.DATASETS key: mnist, fashion_mnist, omniglot (the dataset named configs set it)
    options = {"n_val": 10_000}  # the last 10,000 training images validate (docs/mim.md §1.5)
    transforms = [BINARIZE]  # dynamic binarisation of every training batch
    eval_transforms = [BINARIZE]  # validation and test: one fixed draw (experiments.mim_images seeds it 777)


def training():
    """``src/vae-as-mim-image.py``'s defaults (docs/mim.md §4.2, §5.2)."""
    warmup = WARMUP
    objective = "hvae_vae"
    loss = {"warmup": warmup}
    optimizer = "adam_norm_grad"  # Adam (0.9, 0.999), eps 1e-8, on per-tensor unit-norm gradients
    lr = 5e-4
    batch_size = 100
    eval_batch_size = 100
    epochs = 2000
    eval_every = "epoch"
    select = "val.loss"  # each objective's own validation loss at beta = 1, as the original
    evaluate_best = True
    early_stopping_patience = 51  # the original stops once its counter exceeds 50
    early_stopping_after_epochs = warmup  # ... which it resets to 0 while epoch < warm-up
    log_every = 100
    checkpoint_every = 500  # one epoch of the 50,000 training images


def evaluation():
    run = ["mim_images"]


# --- objectives (training named configs) ----------------------------------------------------------


def vae():
    """The VAE (``convhvae_2level``, ``pixelhvae_2level``)."""
    objective = "hvae_vae"


def amim():
    """A-MIM, the encoding pass only (``pixelhvae_2level-amim``)."""
    objective = "hvae_mim"
    loss = {"sample": False}


def smim():
    """S-MIM, with the decoding pass once beta >= 1 (``convhvae_2level-smim``)."""
    objective = "hvae_mim"
    loss = {"sample": True}


# --- architectures and priors (model named configs) ---------------------------------------------------


def convhvae():
    """The convHVAE: gated convolutions in the decoder (docs/mim.md §2.2)."""
    options = {"decoder": "conv"}


def pixelhvae():
    """The PixelHVAE: a PixelCNN decoder on x and the latents' feature maps (docs/mim.md §2.2)."""
    options = {"decoder": "pixel"}


def vampprior():
    """The VampPrior, 500 pseudo-inputs from the first 500 training images."""
    options = {"prior": "vampprior"}


def standard():
    """The standard normal prior on z2."""
    options = {"prior": "standard"}


# --- datasets (experiment-level named configs) ------------------------------------------------------


def dynamic_mnist():
    """Dynamic MNIST: 50,000 / 10,000 / 10,000 (``--dataset_name dynamic_mnist``)."""
    dataset = {"name": "mnist", "options": {"n_val": 10_000}}


def dynamic_fashion_mnist():
    """Dynamic FashionMNIST: 50,000 / 10,000 / 10,000 (``--dataset_name dynamic_fashion_mnist``)."""
    dataset = {"name": "fashion_mnist", "options": {"n_val": 10_000}}


def omniglot():
    """Omniglot (the IWAE ``chardata.mat``): 23,000 / 1,345 / 8,070, the split seeded and the labels
    aligned with their images (the original's were not, docs/mim.md §9.9)."""
    dataset = {"name": "omniglot", "options": {"n_val": 1345}}


def smoke():
    """A laptop-CPU check of the whole pipeline: the tiny data (512 embedded digits, 64 of them
    validating), batches of 32, 50 pseudo-inputs, a one-epoch warm-up (so S-MIM's decoding pass
    runs), 24 updates, and a smoke-sized evaluation (20 importance samples, 200 points for KSG and
    t-SNE)."""
    dataset = {"tiny": True, "options": {"n_val": 64}}
    model = {"options": {"components": 50}}
    training = {"smoke": True, "warmup": 1, "batch_size": 32, "eval_batch_size": 32, "max_iterations": 24,
                "log_every": 4, "checkpoint_every": 12}  # fmt: skip
    evaluation = {"is_samples": 20, "is_chunk": 10, "ksg_points": 200, "tsne_points": 200, "max_examples": 256}


DATASETS = (dynamic_mnist, dynamic_fashion_mnist, omniglot)
NAMED = {"training": (vae, amim, smim), "model": (convhvae, pixelhvae, vampprior, standard)}
