"""The composition task of "The Role of Disentanglement in Generalisation" (Montero et al., ICLR 2021;
docs/disent.md §2.4). The original named this experiment 'disent' too (docs/disent.md §8 item 11); here it is
``composition``.

A composer (shared VAE encoder, a mixer, the VAE's decoder) sees a reference image, a transform image
and a one-hot action naming a factor d, and must render the reference with its class on d replaced
by the transform's. It trains on triplets drawn within the training part of a generalisation split
(``genlab.data.triplets``), then is scored on fixed triplets:

- ``train``: reference, transform and target all from the training part;
- ``test``: the target's combination lies in the test part (the excluded combinations: the question
  is whether the composer can render a combination it never saw); reference and transform are drawn
  from anywhere in the dataset, because a reference one factor away from an excluded combination is
  itself often excluded (in an extrapolation split, always unless d is the extrapolated factor);
- ``val`` (during training): targets in the validation part, references and transforms from the
  training side (training + validation images), never from the test part.

    python -m experiments.composition with dataset.dsprites dataset.condition=recomb2range \\
        dataset.variant=shape2tx model.burgess_v2 model.linear_mixer seed=3

The default training is ``training.composer`` (composer objective, beta 1, batch 64, Adam 1e-4, 30
epochs of ``n_samples`` = 10,000 triplets; docs/disent.md §4.1).

Logged: ``batch.*``, ``val.*`` (every ``training.eval_every``), and at the end ``train.recon_nll``,
``test.recon_nll`` (Bernoulli NLL of the target rendered from posterior means, nats per image, on
``eval_triplets`` fixed triplets drawn from ``triplet_seed``), and ``train.dci_*``, ``train.mig``,
``train.factorvae_score`` of the composer's encoder (posterior means) on the training part. Artifact ``model.pt``;
``genlab.analysis.runs.load_model`` rebuilds it from the config and ``info["model_inputs"]``.
"""

from __future__ import annotations

import logging

from configs import disent as paper
from genlab.data.triplets import TripletBatches, split_triplets
from genlab.training.distributed import Sharded
from ingredients.experiment import Batches, genlab_experiment, train_and_evaluate
from ingredients.observers import run_cli

ex = genlab_experiment(
    "composition",
    dataset_kinds=["factor_images"],
    dataset=paper.dataset,
    model_kinds=["composer"],
    objectives=["composer"],
    training=[paper.training, paper.composer],
    evaluations=["objective_eval", "disentanglement"],
    named=paper.COMPOSITION,
)


@ex.config
def config():
    n_samples = 10_000  # training triplets per epoch (the original's fixed epoch, docs/disent.md §2.4)
    eval_triplets = 5_000  # fixed triplets of each part (train, val, test) for the NLLs
    triplet_seed = 0  # seed of the fixed evaluation triplets


def triplet_batches(data, config, seed, rank=0, world_size=1) -> Batches:
    """Training triplets drawn within the training part (a split without any fails here, before
    training; in data-parallel training each process keeps its slice of every global batch); fixed
    triplets for validation and for the end-of-run NLLs on train and test."""
    training = config["training"]
    train = TripletBatches(data.train, training["batch_size"], n_samples=config["n_samples"], seed=seed)
    if world_size > 1:
        train = Sharded(train, rank, world_size)
    fixed = split_triplets(data, config["eval_triplets"], config["triplet_seed"], training["eval_batch_size"])
    inert = (train.batches if world_size > 1 else train).sampler.inert_factors
    if inert:
        logging.getLogger("genlab.composition").warning(
            "no training triplet can change %s: those actions are never trained", ", ".join(inert)
        )
    sets = {split: fixed[split] for split in ("train", "test") if split in fixed}
    return Batches(train, fixed.get("val"), sets, info={"n_actions": len(data.factor_names), "inert_factors": inert})


@ex.main
def main(_run, _config, _seed):
    return train_and_evaluate(_run, _config, _seed, batches=triplet_batches)


if __name__ == "__main__":
    run_cli(ex)
