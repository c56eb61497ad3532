#!/usr/bin/env bash
# The ground-truth decoders of "The Role of Disentanglement in Generalisation" (docs/disent.md §2.3, §6):
# one per generalisation split of each dataset in DATASETS (default "dsprites shapes3d mpi3d"), with
# the original's decoder per dataset: higgins (dSprites), kim_bn (3DShapes), deep_bn (MPI3D).
#   bin/disent/decoders.sh --dry-run
#   DATASETS=dsprites bin/disent/decoders.sh dataset.source=generated
# Environment: DATASETS, SEEDS (default "0"), GENLAB_MONGO (record to MongoDB too).
source "$(dirname "${BASH_SOURCE[0]}")/../lib/sweep.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../lib/disent.sh"

commands() {
  local dataset condition variant seed
  for dataset in ${DATASETS:-dsprites shapes3d mpi3d}; do
    local decoder
    case "$dataset" in dsprites) decoder=higgins ;; shapes3d) decoder=kim_bn ;; *) decoder=deep_bn ;; esac
    while read -r condition variant; do
      for seed in ${SEEDS:-0}; do
        echo "python -m experiments.decoders with dataset.$dataset dataset.condition=$condition dataset.variant=$variant model.$decoder seed=$seed"
      done
    done < <(disent_splits "$dataset")
  done
}

sweep_main "$@"
