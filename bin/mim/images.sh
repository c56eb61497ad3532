#!/usr/bin/env bash
# MIM E6, images (docs/mim.md §0, §6.3): {dynamic_mnist dynamic_fashion_mnist omniglot} x {convHVAE VAE, convHVAE S-MIM,
# PixelHVAE VAE, PixelHVAE A-MIM} x {vampprior standard} x seeds 1..10 (SEEDS to change): 240 runs of experiments.mim_images,
# each up to 2,000 epochs (early stopping after the 100-epoch warm-up) and a 5,000-sample IS-NLL: GPU runs.
#   bin/mim/images.sh --dry-run                     list the commands
#   bin/mim/images.sh                               run them one after another
#   DATASETS=dynamic_mnist SEEDS="1 2" bin/mim/images.sh device=cuda   any KEY=VALUE is appended to every command
#   bin/mim/images.sh --dry-run > jobs.txt && sbatch --array=1-$(wc -l < jobs.txt) bin/slurm-array jobs.txt
# Omniglot needs data/raw/omniglot/chardata.mat (or dataset.options.path=...); MNIST: bin/get-data mnist; FashionMNIST: bin/get-data fashion_mnist.
# Then: python -m genlab.analysis.mim (or notebooks/mim.ipynb) draws the table and the image figures.
# Environment: DATASETS, SEEDS (default "1 2 3 4 5 6 7 8 9 10"), GENLAB_MONGO (record to MongoDB too).
source "$(dirname "${BASH_SOURCE[0]}")/../lib/sweep.sh"
commands() {
  local dataset pair prior seed
  for dataset in ${DATASETS:-dynamic_mnist dynamic_fashion_mnist omniglot}; do
    for pair in "convhvae vae" "convhvae smim" "pixelhvae vae" "pixelhvae amim"; do
      set -- $pair
      for prior in vampprior standard; do
        for seed in ${SEEDS:-1 2 3 4 5 6 7 8 9 10}; do
          echo "python -m experiments.mim_images with $dataset model.$1 model.$prior training.$2 seed=$seed"
        done
      done
    done
  done
}
sweep_main "$@"
