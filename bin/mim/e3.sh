#!/usr/bin/env bash
# MIM E3, the entropy regulariser (MIM - H vs VAE + H) (docs/mim.md §0, §7.3): e3 x model.options.mid_dim in {5 20 50 100 200 300 400 500} x {mim_inv_h vae_inv_h}, seeds 1..10
# (SEEDS to change); 200 epochs at most, warm-up 3 (early stopping usually ends a run far sooner).
#   bin/mim/e3.sh --dry-run                       list the commands
#   bin/mim/e3.sh                                 run them one after another
#   SEEDS="1 2 3" bin/mim/e3.sh device=cuda        any KEY=VALUE is appended to every command
#   bin/mim/e3.sh --dry-run > jobs.txt && sbatch --array=1-$(wc -l < jobs.txt) bin/slurm-array jobs.txt
# Then: python -m genlab.analysis.mim (or notebooks/mim.ipynb) draws the figures.
# Environment: SEEDS (default "1 2 3 4 5 6 7 8 9 10"), GENLAB_MONGO (record to MongoDB too),
# OMP_NUM_THREADS (default 1: these tiny MLPs run fastest on one thread; run several jobs side by side).
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
source "$(dirname "${BASH_SOURCE[0]}")/../lib/sweep.sh"
commands() {
  local seed loss value
  for loss in mim_inv_h vae_inv_h; do
    for value in 5 20 50 100 200 300 400 500; do
      for seed in ${SEEDS:-1 2 3 4 5 6 7 8 9 10}; do
        echo "python -m experiments.mim with e3 training.$loss model.options.mid_dim=$value seed=$seed"
      done
    done
  done
}
sweep_main "$@"
