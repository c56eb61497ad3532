"""Configs of "The Role of Disentanglement in Generalisation" (Montero et al., ICLR 2021; docs/disent.md).

Defaults shared by ``experiments.disent``, ``experiments.decoders`` and ``experiments.composition``,
then the paper's settings as named configs; each sets only what differs from the defaults.
"""

# --- defaults -----------------------------------------------------------------------------------


def dataset():
    name = "dsprites"  # genlab.data.DATASETS key (a factor dataset)
    source = "file"  # "file": the published file; "generated": rendered offline (dSprites); "standin": synthetic
    path = None  # the published file, if not at data/raw/<name>/<its file name>
    resident = "auto"  # images on the training device (True), read lazily from the file (False), or "auto"
    strides = None  # per-factor strides of a sub-grid (overrides tiny)
    condition = None  # generalisation condition (extrp, recomb2range, recomb2element); None: no split
    variant = None  # the condition's variant (e.g. blank_side); None: the condition's default
    val_fraction = 0.05  # training combinations held out for validation
    split_seed = 0  # seed of the validation hold-out


def training():
    objective = "beta_vae"  # with its default beta = 1: the VAE
    batch_size = 64
    lr = 1e-4  # Adam (docs/disent.md §4.1)
    epochs = 30


# --- dataset ------------------------------------------------------------------------------------


def generated():
    """dSprites rendered offline from its factor grid (docs/disent.md §1.1), cached in the real format."""
    source = "generated"


def standin():
    """A synthetic stand-in of 3DShapes or MPI3D with the real shapes, dtypes and factor grid (not the
    real images): smoke runs and tests only."""
    source = "standin"


# --- model --------------------------------------------------------------------------------------


def original_inputs():
    """The ground-truth decoder fed the raw factor values, as the original did (docs/disent.md §2.3,
    §8 item 8); MPI3D's inputs are then class index x factor size, as its target transform made them."""
    options = {"inputs": "original"}


# --- training -----------------------------------------------------------------------------------


def vae():
    """VAE: the beta-VAE objective with beta = 1 (docs/disent.md §3, §6: the "VAE" of every table)."""
    objective = "beta_vae"
    loss = {"beta": 1.0}


def beta_vae():
    """beta-VAE (Higgins et al. 2017) with beta = 8, the beta-VAE row of the paper's tables
    (docs/disent.md §7); the sweep also runs beta = 12 (``training.loss.beta=12``)."""
    objective = "beta_vae"
    loss = {"beta": 8.0}


def cci_vae():
    """CCI-VAE (Burgess et al. 2018): gamma 50, capacity 0 -> 20 nats over 10,000 iterations, the
    original's ``cci`` config (docs/disent.md §3; broken in the original, runs here)."""
    objective = "cci_vae"
    loss = {"gamma": 50.0, "c_min": 0.0, "c_max": 20.0, "c_steps": 10_000}


def factor_vae():
    """FactorVAE as the original trains it (docs/disent.md §3, §4.1): batch 128, gamma 100 (the sweep
    uses 20/50/100), discriminator 6 x 1000 LeakyReLU(0.01), Adam lr 1e-5, betas (0.5, 0.9)."""
    objective = "factor_vae"
    batch_size = 128
    loss = {"gamma": 100.0, "disc_lr": 1e-5, "disc_betas": (0.5, 0.9), "disc_slope": 0.01}


def factor_vae_kim_mnih():
    """FactorVAE's discriminator as Kim & Mnih (2018) specify it: Adam lr 1e-4, LeakyReLU slope 0.2
    (the original used 1e-5 and 0.01; its published numbers depend on those)."""
    objective = "factor_vae"
    batch_size = 128
    loss = {"disc_lr": 1e-4, "disc_slope": 0.2}


def gt_decoder():
    """The ground-truth decoder's training, the original's ``generation`` config (docs/disent.md §4.1):
    500 "epochs" of 10 iterations = 5,000 iterations of batch 64, Adam 1e-3. The default of
    ``experiments.decoders``."""
    objective = "gt_decoder"
    lr = 1e-3
    max_iterations = 5000
    eval_every = 500
    checkpoint_every = 500


def composer():
    """The composition task (docs/disent.md §2.4, §4.1): the composer objective with beta = 1 (the
    original trained it with its default ``vae`` config), batch 64, Adam 1e-4, 30 epochs of 10,000
    triplets (``n_samples``; 156 iterations each). The default of ``experiments.composition``."""
    objective = "composer"
    loss = {"beta": 1.0}


# --- what each experiment offers ---------------------------------------------------------------

DATASET_CONFIGS = (generated, standin)
DISENT = {"dataset": DATASET_CONFIGS, "training": (vae, beta_vae, cci_vae, factor_vae, factor_vae_kim_mnih)}
DECODERS = {"dataset": DATASET_CONFIGS, "model": (original_inputs,), "training": (gt_decoder,)}
COMPOSITION = {"dataset": DATASET_CONFIGS, "training": (composer,)}
