"""Configs of ICE-BeeM on images (Khemakhem et al., NeurIPS 2020, sections 5.2-5.3 and figure panels
(a)-(d); docs/icebeem.md §3a, §3b, §4b, §5b-§5d, §6, §7).

One run = one part of the recipe on one dataset: an experiment-level named config for the dataset
(``mnist``, ``fashionmnist``, ``cifar10``, ``cifar100``: the original's ``<dataset>.yaml``, §5b) and one
for the part (``pretrain`` ... ``semisupervised_baseline``, §5d). "Baseline" is the unconditional EBM
E(x) = sum_i f_i(x) trained by DSM; ICE-BeeM is the conditional E(x, y) = f(x)^T g(y) trained by CDSM.
Every part trains ConvMLP features (``model.convmlp``; ``model.mlp`` and ``model.unet`` are the
original's other extractors) with Adam at 1e-3 on batches of 63, the images dequantised every step
(§5c). The parts that build on another run (transfer, semi-supervised, MCC pairs) find it in the run
store by config (``pretrained="auto"``): the latest completed run of the part they need with the same
dataset, classes, model and smoke settings.

The original's behaviours that change results are off by default and kept behind named configs:
``train_mode_features`` (features and the frozen transfer f with Dropout and batch statistics on,
§10.7) and ``semisupervised_original`` (the standardisation fitted on every point, one fixed split,
§10.16). The representation runs are one run per seed (the original re-seeded every model of one
process identically, §10.5; not reproduced).
"""

PARTS = (
    "pretrain", "baseline", "transfer", "transfer_baseline", "representation", "representation_baseline",
    "mcc", "mcc_baseline", "semisupervised", "semisupervised_baseline",
)  # fmt: skip
# the part whose runs a part builds on (found in the run store by config)
NEEDS = {"transfer": "pretrain", "semisupervised": "pretrain", "semisupervised_baseline": "baseline",
         "mcc": "representation", "mcc_baseline": "representation_baseline"}  # fmt: skip
UNCONDITIONAL = ("baseline", "representation_baseline", "mcc_baseline", "semisupervised_baseline")
PRETRAIN_STEPS = 5001  # every run of a main config stops at 5,001 optimiser steps (§5b)
TRANSFER_EPOCHS = 10  # the transfer of g always runs 10 epochs (§5b)
TRANSFER_SIZES = (0, 500, 1000, 2000, 3000, 4000, 5000, 6000)  # N, the first N held-out training images (§1)
DEQUANTIZE = ["dequantize", {"levels": 256}]  # x * 255/256 + U(0, 1)/256 every step (§5c)
FLIP = ["hflip", {"p": 0.5}]  # CIFAR training images only (§5c)


def dataset():
    name = "mnist"  # genlab.data.DATASETS key: mnist, fashion_mnist, cifar10, cifar100
    labels = "kept"  # pretraining sees the classes 0..n_labels-1
    n_labels = 8  # held out: 8-9 (MNIST, FashionMNIST, CIFAR-10), 85-99 (CIFAR-100)
    transforms = [DEQUANTIZE]


def training():
    objective = "cdsm"
    batch_size = 63
    lr = 1e-3  # Adam, betas (0.9, 0.999), no weight decay (§5b)
    phases = [{"name": "pretrain", "iterations": PRETRAIN_STEPS}]
    epochs = 15  # only transfer_baseline reads it (no phases): the baseline configs' n_epochs (MNIST: 5)
    log_every = 100
    checkpoint_every = 1000


def evaluation():
    run = []  # the parts that evaluate set their own
    svm_test_size = 0.15  # the semi-supervised split: 0.15 MNIST / FashionMNIST, 0.33 CIFAR (§5b)


# --- datasets (experiment-level named configs; the original's configs/<dataset>.yaml, §5b) -----------


def mnist():
    """MNIST (``mnist.yaml``): 28x28 grey, feature size 90, classes 8-9 held out; the transfer
    baseline trains 5 epochs (``mnist_baseline.yaml``, §10.17); semi-supervised test size 0.15."""
    dataset = {"name": "mnist", "n_labels": 8, "transforms": [DEQUANTIZE]}
    model = {"options": {"feature_size": 90}}
    training = {"epochs": 5}
    evaluation = {"svm_test_size": 0.15}


def fashionmnist():
    """FashionMNIST (``fashionmnist.yaml``): 28x28 grey, feature size 200, classes 8-9 held out; the
    transfer baseline trains 15 epochs; semi-supervised test size 0.15."""
    dataset = {"name": "fashion_mnist", "n_labels": 8, "transforms": [DEQUANTIZE]}
    model = {"options": {"feature_size": 200}}
    training = {"epochs": 15}
    evaluation = {"svm_test_size": 0.15}


def cifar10():
    """CIFAR-10 (``cifar10.yaml``): 32x32 colour with random horizontal flips, feature size 200, classes
    8-9 held out; the transfer baseline trains 15 epochs; semi-supervised test size 0.33."""
    dataset = {"name": "cifar10", "n_labels": 8, "transforms": [DEQUANTIZE, FLIP]}
    model = {"options": {"feature_size": 200}}
    training = {"epochs": 15}
    evaluation = {"svm_test_size": 0.33}


def cifar100():
    """CIFAR-100 (``cifar100.yaml``): as CIFAR-10 with the fine labels, classes 85-99 held out ("to have
    6k points for transfer", §1); semi-supervised is 15-way (§10.16)."""
    dataset = {"name": "cifar100", "n_labels": 85, "transforms": [DEQUANTIZE, FLIP]}
    model = {"options": {"feature_size": 200}}
    training = {"epochs": 15}
    evaluation = {"svm_test_size": 0.33}


# --- parts (experiment-level named configs; §5d) -----------------------------------------------------


def pretrain():
    """Pretraining ICE-BeeM for transfer and semi-supervised learning: CDSM on the kept classes of the
    training split, 5,001 steps; its f and g are ``model.pt``. The default part."""
    part = "pretrain"
    dataset = {"labels": "kept"}
    training = {"objective": "cdsm", "phases": [{"name": "pretrain", "iterations": PRETRAIN_STEPS}]}


def baseline():
    """Pretraining the unconditional baseline for semi-supervised learning: DSM of E(x) = sum f(x) on the
    kept classes, 5,001 steps."""
    part = "baseline"
    dataset = {"labels": "kept"}
    training = {"objective": "dsm", "phases": [{"name": "pretrain", "iterations": PRETRAIN_STEPS}]}


def transfer():
    """Transfer: the pretrained f frozen (in eval mode; ``train_mode_features`` for the original's train
    mode), a new g on the held-out classes trained by CDSM for 10 epochs over the first
    ``dataset.first_n`` held-out training images (the grid: 500 ... 6000, seeds 0-4); every epoch's
    median batch loss is logged (``epoch.loss_median``: at the last epoch, the metric of §7)."""
    part = "transfer"
    pretrained = "auto"
    dataset = {"labels": "held_out", "first_n": 6000}
    model = {"init_strict": False}  # f from the pretrained run, a new g for the held-out classes
    training = {"objective": "cdsm", "loss": {"update": "g"}, "epoch_medians": ["loss"], "log_every": 10,
                "phases": [{"name": "transfer", "epochs": TRANSFER_EPOCHS}]}  # fmt: skip


def transfer_n0():
    """Transfer at N = 0 (§5d, §10.9): nothing is trained; the DSM loss of the unconditional E = sum f
    with the pretrained f is measured over the whole held-out training part for 10 epochs."""
    part = "transfer"
    pretrained = "auto"
    dataset = {"labels": "held_out", "first_n": None}
    model = {"init_strict": False}
    training = {"objective": "dsm", "loss": {"update": "none"}, "epoch_medians": ["loss"], "log_every": 10,
                "phases": [{"name": "transfer", "epochs": TRANSFER_EPOCHS}]}  # fmt: skip


def transfer_baseline():
    """The transfer baseline: fresh f and g trained by CDSM on the same first ``dataset.first_n``
    held-out training images for ``training.epochs`` epochs (5 for MNIST, 15 for the others; the
    dataset's named config sets it), every epoch's median batch loss logged."""
    part = "transfer_baseline"
    dataset = {"labels": "held_out", "first_n": 6000}
    training = {"objective": "cdsm", "epoch_medians": ["loss"], "log_every": 10, "phases": None}


def transfer_baseline_n0():
    """The transfer baseline at N = 0: the unconditional EBM trained by DSM on the whole held-out
    training part (§5d, §10.9)."""
    part = "transfer_baseline"
    dataset = {"labels": "held_out", "first_n": None}
    training = {"objective": "dsm", "epoch_medians": ["loss"], "log_every": 10, "phases": None}


def representation():
    """Representation identifiability, ICE-BeeM: CDSM on every class of the training split for 5,001
    steps, one run per seed (0-19 in the full recipe); the features f(x) of the whole test split, in
    order and in eval mode, are the artifact ``features.npz``."""
    part = "representation"
    dataset = {"labels": "all"}
    training = {"objective": "cdsm", "phases": [{"name": "pretrain", "iterations": PRETRAIN_STEPS}]}
    evaluation = {"run": ["test_features"]}


def representation_baseline():
    """Representation identifiability, the baseline: the unconditional EBM by DSM, as ``representation``."""
    part = "representation_baseline"
    dataset = {"labels": "all"}
    training = {"objective": "dsm", "phases": [{"name": "pretrain", "iterations": PRETRAIN_STEPS}]}
    evaluation = {"run": ["test_features"]}


def mcc():
    """The MCC of one pair of ICE-BeeM representation runs (``pair=[i, j]``, seeds i < j; 190 pairs of
    20 seeds): strong (no transform) and weak (after a CCA with 20 components), in and out of sample
    (§7). Trains nothing."""
    part = "mcc"
    pretrained = "auto"
    pair = [0, 1]
    training = {"objective": "cdsm"}


def mcc_baseline():
    """The MCC of one pair of baseline representation runs, as ``mcc``."""
    part = "mcc_baseline"
    pretrained = "auto"
    pair = [0, 1]
    training = {"objective": "dsm"}


def semisupervised():
    """Semi-supervised classification with the pretrained ICE-BeeM f: a linear SVM on the standardised
    features of the held-out classes of the test split, 5 repetitions (§5d, §7). Trains nothing."""
    part = "semisupervised"
    pretrained = "auto"
    dataset = {"labels": "held_out", "options": {"split": "test"}}
    model = {"init_strict": False}  # f is the pretrained run's; its g (of the kept classes) is not used
    training = {"objective": "cdsm", "loss": {"update": "none"}, "phases": None, "max_iterations": 0}
    evaluation = {"run": ["semisupervised_svm"]}


def semisupervised_baseline():
    """Semi-supervised classification with the pretrained baseline's f, as ``semisupervised``."""
    part = "semisupervised_baseline"
    pretrained = "auto"
    dataset = {"labels": "held_out", "options": {"split": "test"}}
    model = {"init_strict": False}
    training = {"objective": "dsm", "loss": {"update": "none"}, "phases": None, "max_iterations": 0}
    evaluation = {"run": ["semisupervised_svm"]}


# --- the original's behaviours (§10) ---------------------------------------------------------------


def train_mode_features():
    """The original never switched f to eval mode (§10.7): test features (representation,
    semi-supervised) with Dropout(0.1) on and BatchNorm on the statistics of batches of 63, and the
    frozen f of transfer in train mode (its BatchNorm running statistics keep updating)."""
    evaluation = {"features_mode": "train"}
    training = {"loss": {"frozen_mode": "train"}}


def semisupervised_original():
    """The original's semi-supervised protocol (§5d, §10.16): the standardisation fitted on every
    point before the split, the split and the SVM seeded 0 in every repetition, the features in train
    mode in shuffled batches (so the repetitions differ only by Dropout and batch composition)."""
    evaluation = {"svm_standardise": "all", "svm_split": "fixed", "features_mode": "train"}


def smoke():
    """A smoke run of any part on a laptop CPU: ``training.smoke`` (at most 200 steps), the dataset's
    stand-in (``dataset.tiny``), narrow ConvMLP features (ngf 8)."""
    dataset = {"tiny": True}
    model = {"options": {"ngf": 8}}
    training = {"smoke": True, "max_iterations": 200, "eval_every": 100, "log_every": 20, "checkpoint_every": 100}


DATASETS = (mnist, fashionmnist, cifar10, cifar100)
PARTS_CONFIGS = (pretrain, baseline, transfer, transfer_n0, transfer_baseline, transfer_baseline_n0, representation,
                 representation_baseline, mcc, mcc_baseline, semisupervised, semisupervised_baseline)  # fmt: skip
ORIGINAL = (train_mode_features, semisupervised_original, smoke)
