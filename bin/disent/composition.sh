#!/usr/bin/env bash
# The composition task of "The Role of Disentanglement in Generalisation" (docs/disent.md §2.4, §6): the
# composer with the linear mixer (the only one the original reported) trained on each
# generalisation split, SEEDS seeds each (default: 1 seed, 0).
#   bin/disent/composition.sh --dry-run                  list the commands (dSprites: 3 splits)
#   bin/disent/composition.sh dataset.source=generated   run them on the generated dSprites
#   DATASETS="dsprites shapes3d mpi3d" bin/disent/composition.sh --dry-run > jobs.txt
#   sbatch --array=1-$(wc -l < jobs.txt) bin/slurm-array jobs.txt
# Environment: DATASETS (default "dsprites"; also shapes3d, mpi3d), MODEL (default burgess_v2, the
# architecture of the original's run-composition.sh), MIXER (default linear), SEEDS (default "0"),
# GENLAB_MONGO (record to MongoDB too).
source "$(dirname "${BASH_SOURCE[0]}")/../lib/sweep.sh"

# the splits of each dataset (condition variant), as in the disent sweeps (docs/disent.md §1.4, §6)
splits_of() {
  case "$1" in
    dsprites) echo "extrp:blank_side recomb2range:shape2tx recomb2element:leave1out" ;;
    shapes3d) echo "extrp:fhue_gt50 recomb2range:shape2ohue recomb2element:leave1out" ;;
    mpi3d) echo "extrp:horz_gt20 recomb2range:cyl2horz recomb2element:leave1out" ;;
    *) echo "unknown dataset in DATASETS: $1 (dsprites, shapes3d, mpi3d)" >&2; return 2 ;;
  esac
}

commands() {
  local model="${MODEL:-burgess_v2}" mixer="${MIXER:-linear}"
  for ds in ${DATASETS:-dsprites}; do
    for split in $(splits_of "$ds"); do
      local data="dataset.$ds dataset.condition=${split%%:*} dataset.variant=${split#*:}"
      for seed in ${SEEDS:-0}; do
        echo "python -m experiments.composition with $data model.$model model.${mixer}_mixer seed=$seed"
      done
    done
  done
}

for ds in ${DATASETS:-dsprites}; do splits_of "$ds" > /dev/null || exit 2; done  # before any command runs
sweep_main "$@"
