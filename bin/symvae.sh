#!/usr/bin/env bash
# Symmetric equilibrium learning of binary-latent HVAEs (docs/symvae.md §5): the README's FID table,
# the three variants (mnist_ladder, mnist_reverse, fmnist_ladder) x {symmetric, ELBO}, SEEDS seeds
# each (default "0"; the original sets none), 200,000 iterations of batch 1024 at 30 / 100 bits and
# both FIDs on 70,000 vs 70,000 images at the end. Needs bin/get-data mnist fashion_mnist fid.
#   bin/symvae.sh --dry-run                       list the 6 commands
#   bin/symvae.sh                                 run them one after another
#   bin/symvae.sh device=cuda                     any KEY=VALUE is appended to every command
#   PAPER=1 bin/symvae.sh                         the paper's runs: MNIST 1M iterations, FashionMNIST 280k at 50 / 200 bits
#   bin/symvae.sh --dry-run > jobs.txt && sbatch --array=1-$(wc -l < jobs.txt) bin/slurm-array jobs.txt
# Then: python -m genlab.analysis.symvae (or notebooks/symvae.ipynb) makes the table.
# Environment: SEEDS (default "0"), PAPER (1: the paper's lengths and sizes), GENLAB_MONGO (record to MongoDB too).
source "$(dirname "${BASH_SOURCE[0]}")/lib/sweep.sh"
commands() {
  local seed variant method paper
  for seed in ${SEEDS:-0}; do
    for variant in mnist_ladder mnist_reverse fmnist_ladder; do
      paper=""
      if [ "${PAPER:-0}" = 1 ]; then
        case "$variant" in fmnist_*) paper=" paper_fmnist" ;; *) paper=" paper_mnist" ;; esac
      fi
      for method in sym elbo; do
        echo "python -m experiments.symvae with $variant$paper training.$method seed=$seed"
      done
    done
  done
}
sweep_main "$@"
