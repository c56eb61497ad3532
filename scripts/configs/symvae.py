"""Configs of "Symmetric Equilibrium Learning of VAEs" (Flach, Schlesinger & Shekhovtsov, AISTATS 2024;
docs/symvae.md): binary-latent two-level HVAEs learned by the symmetric (wake-sleep-like) equilibrium
game or by the ELBO with the ZGR gradient estimator.

One run = one variant x one method. The variant is an experiment-level named config that sets the
data and the model together: ``mnist_ladder`` (the default), ``mnist_reverse``, ``fmnist_ladder``
(docs/symvae.md §1, §3.1). The method is ``training.sym`` (the default) or ``training.elbo``. The
README demo's sizes (30 / 100 bits, 200,000 iterations) are the defaults; ``paper_mnist`` and
``paper_fmnist`` are the paper's runs as its README describes them (§3.2).
"""

MNIST_TRANSFORMS = [["flip_pixels", {"p": 0.001}]]  # 0.1 % pixel flips, fresh every iteration (§2.1 step 1)
FMNIST_TRANSFORMS = [["gaussian_noise", {"std": 0.01}]]  # N(0, 0.01^2) per pixel, no clamping (§2.1 step 1)


def dataset():
    name = "mnist"  # genlab.data.DATASETS key: "mnist" or "fashion_mnist"
    options = {"split": "all", "binarize": "threshold", "threshold": 0.4375}  # train + test, 70,000 images; static 7/16 threshold (§3.1)
    transforms = MNIST_TRANSFORMS


# the variants (experiment-level named configs): data and model together (docs/symvae.md §1.4, §3.1, §4.3)
def mnist_ladder():
    """MNIST binarised at 7/16 with 0.1 % pixel flips; Bernoulli decoder with tanh; the ladder encoder
    q(z0|x) q(z1|z0,x), which reuses the decoder's g; limiting chains start from an ancestral sample
    (docs/symvae.md §1.2, §1.4, §4.3). The default variant."""
    dataset = {"name": "mnist", "options": {"split": "all", "binarize": "threshold", "threshold": 0.4375},
               "transforms": MNIST_TRANSFORMS}
    model = {"options": {"encoder": "ladder", "likelihood": "bernoulli", "trunk": 600,
                         "decoder_activation": "tanh", "chain_start": "ancestral"}}


def mnist_reverse():
    """MNIST as ``mnist_ladder``; the reverse encoder q(z1|x) q(z0|z1) (the wake-sleep order), which
    shares no parameters with the decoder; limiting chains start from a thresholded random-code image
    (docs/symvae.md §1.3, §1.4, §4.3)."""
    dataset = {"name": "mnist", "options": {"split": "all", "binarize": "threshold", "threshold": 0.4375},
               "transforms": MNIST_TRANSFORMS}
    model = {"options": {"encoder": "reverse", "likelihood": "bernoulli", "trunk": 600,
                         "decoder_activation": "tanh", "chain_start": "random_code"}}


def fmnist_ladder():
    """FashionMNIST grey levels with N(0, 0.01^2) noise; a Gaussian decoder with one learned log-sigma
    and ReLU; the ladder encoder with a 1000-wide trunk; limiting chains start from binary noise
    (docs/symvae.md §1.1, §1.4, §4.3)."""
    dataset = {"name": "fashion_mnist", "options": {"split": "all", "binarize": None},
               "transforms": FMNIST_TRANSFORMS}
    model = {"options": {"encoder": "ladder", "likelihood": "gaussian", "trunk": 1000,
                         "decoder_activation": "relu", "chain_start": "noise"}}


def sym():
    """Symmetric equilibrium learning (docs/symvae.md §2.1, §3.2): per iteration one Adam step of the
    decoder on encoder samples of the noisy data batch, then one of the encoder on ancestral samples
    of the just-updated decoder; lr 1e-4, batch 1024, 200,000 iterations (the README demo). Batches
    are drawn by an ordinary shuffled sampler (every image once per epoch of 68 batches): the
    original's random contiguous slices see some images more often than others within a period and
    are available as ``training.original_batches``. The default of ``experiments.symvae``."""
    objective = "sym_equilibrium"
    lr = 1e-4
    batch_size = 1024
    max_iterations = 200_000
    eval_every = 10_000_000  # no validation split (the model trains on all 70,000 images, §3.1)
    log_every = 100  # the original's log period (§3.3)
    checkpoint_every = 1000  # as the original; here with both optimizers, so resume is exact


def elbo():
    """The ELBO baseline (docs/symvae.md §2.2): one Adam over all parameters, the negative ELBO per
    image with one ZGR sample, analytic per-bit KLs for the ladder encoder and the one-sample KL
    estimate for the reverse one; lr, batch and length as ``training.sym``."""
    objective = "binary_elbo"


def original_batches():
    """The original's batching (docs/symvae.md §3.1): contiguous slices of 1024 rows at uniformly
    random offsets, the set re-permuted every 70,000 // 1024 = 68 batches, the first 68 slicing the
    train-then-test order."""
    sampler = "random_slices"


def paper_mnist():
    """The paper's MNIST runs as its README describes them (docs/symvae.md §3.2, §5): 1,000,000
    iterations at 30 / 100 bits (the README's FID table was made with 200,000)."""
    training = {"max_iterations": 1_000_000}


def paper_fmnist():
    """The paper's FashionMNIST run as its README describes it (docs/symvae.md §3.2, §5): 50 / 200
    bits and 280,000 iterations; with the ``fmnist_ladder`` variant."""
    training = {"max_iterations": 280_000}
    model = {"options": {"nz0": 50, "nz1": 200}}


def evaluation():
    run = ["symvae_samples"]


SYMVAE = {"training": (sym, elbo, original_batches)}
VARIANTS = (mnist_ladder, mnist_reverse, fmnist_ladder)
PAPER = (paper_mnist, paper_fmnist)
