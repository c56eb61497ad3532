#!/usr/bin/env bash
# MIM E1, the animation (docs/mim.md §0, §6.2): S-MIM on toyMIM, the VAE on toyVAE, the AE on toyAE,
# z_dim 2, mid_dim 50, 49 epochs, warm-up 25, seed 1 (SEEDS to change).
#   bin/mim/e1.sh --dry-run                       list the 3 commands
#   bin/mim/e1.sh                                 run them one after another
#   bin/mim/e1.sh device=cuda                     any KEY=VALUE is appended to every command
#   bin/mim/e1.sh --dry-run > jobs.txt && sbatch --array=1-$(wc -l < jobs.txt) bin/slurm-array jobs.txt
# Then: notebooks/mim.ipynb (genlab.analysis.mim) draws the reconstruction and latent figures.
# Environment: SEEDS (default "1"), GENLAB_MONGO (record to MongoDB too), OMP_NUM_THREADS (default 1).
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
source "$(dirname "${BASH_SOURCE[0]}")/../lib/sweep.sh"
commands() {
  local seed panel
  for seed in ${SEEDS:-1}; do
    for panel in mim vae ae; do
      echo "python -m experiments.mim with e1_$panel seed=$seed"
    done
  done
}
sweep_main "$@"
