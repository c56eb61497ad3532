#!/usr/bin/env bash
# The nonlinear ICA simulations of ICE-BeeM (docs/icebeem.md §1, §5a, §6; figure panels (e), (f)):
# for each dataset ("TCL" data, IMCA) x method (ICE-BeeM, iVAE, TCL) x mixing layers L in {2, 4}
# x observations per segment n in {100, 200, 500, 1000, 2000}, SEEDS model seeds each (default
# "0 1 2 3 4 5 6 7 8 9", the paper's 10), the data seed fixed to 1 (dataset.data_seed).
#   bin/icebeem/sims.sh --dry-run                     list the 600 commands
#   bin/icebeem/sims.sh                               run them one after another
#   SEEDS=0 bin/icebeem/sims.sh device=cuda           60 commands, one seed (any KEY=VALUE is appended)
#   bin/icebeem/sims.sh --dry-run > jobs.txt && sbatch --array=1-$(wc -l < jobs.txt) bin/slurm-array jobs.txt
# Then: python -m genlab.analysis.icebeem_sim (or notebooks/icebeem_sim.ipynb) redraws the figure.
# Environment: SEEDS (default "0 1 2 3 4 5 6 7 8 9"), GENLAB_MONGO (record to MongoDB too),
# OMP_NUM_THREADS (default 1: these tiny MLPs run fastest on one thread; run several jobs side by side).
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
source "$(dirname "${BASH_SOURCE[0]}")/../lib/sweep.sh"
commands() {
  local dataset method layers n seed
  for dataset in tcl imca; do
    for method in icebeem ivae tcl; do
      for layers in 2 4; do
        for n in 100 200 500 1000 2000; do
          for seed in ${SEEDS:-0 1 2 3 4 5 6 7 8 9}; do
            echo "python -m experiments.icebeem_sim with dataset.$dataset training.$method" \
              "dataset.options.n_layers=$layers dataset.options.n_per_segment=$n seed=$seed"
          done
        done
      done
    done
  done
}
sweep_main "$@"
