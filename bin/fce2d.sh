#!/usr/bin/env bash
# Flow contrastive estimation on 2D data (docs/fce.md): every dataset (8gaussians, spiral, 2spirals,
# checkerboard, rings, pinwheel) x flow (glow, maf) trained by FCE against the EBM, and the same
# flows trained alone by maximum likelihood (the paper's Glow-MLE baseline), SEEDS seeds each
# (default "42", the reference's seed). 50,000 iterations of batch 1000 each (training.fce_2d).
#   bin/fce2d.sh --dry-run                          list the 24 commands
#   bin/fce2d.sh                                    run them one after another
#   bin/fce2d.sh training.max_iterations=2000       shorter runs (any KEY=VALUE is appended)
#   bin/fce2d.sh --dry-run > jobs.txt && sbatch --array=1-$(wc -l < jobs.txt) bin/slurm-array jobs.txt
# Environment: SEEDS (default "42"), GENLAB_MONGO (record to MongoDB too).
source "$(dirname "${BASH_SOURCE[0]}")/lib/sweep.sh"
commands() {
  local seed dataset flow
  for seed in ${SEEDS:-42}; do
    for dataset in 8gaussians spiral 2spirals checkerboard rings pinwheel; do
      for flow in glow maf; do
        echo "python -m experiments.fce2d with dataset.$dataset model.$flow seed=$seed"
        echo "python -m experiments.fce2d with dataset.$dataset model.$flow training.flow_mle_2d seed=$seed"
      done
    done
  done
}
sweep_main "$@"
