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
source "$(dirname "${BASH_SOURCE[0]}")/../lib/mim.sh"
commands() { mim_grid e3 model.options.mid_dim "5 20 50 100 200 300 400 500" "mim_inv_h vae_inv_h"; }
sweep_main "$@"
