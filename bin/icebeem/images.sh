#!/usr/bin/env bash
# ICE-BeeM on images (docs/icebeem.md §1, §5d, §6; figure panels (a)-(d) and the semi-supervised table):
# the original README's full recipe, per dataset, in five stages that each need the one before:
#   pretrain        ICE-BeeM pretraining (CDSM on the kept classes) and the unconditional baseline (DSM)
#   transfer        transfer of g and the baseline from scratch, N in SIZES x TRANSFER_SEEDS (N = 0: *_n0)
#   representation  one ICE-BeeM and one baseline run per seed in REPRESENTATION_SEEDS (all classes)
#   mcc             strong / weak MCC of every pair i < j of those seeds (190 pairs each for 20 seeds)
#   semisupervised  the linear SVM on the pretrained ICE-BeeM and baseline features
# Usage:
#   bin/icebeem/images.sh --dry-run                    list the commands (all datasets, all stages: 2,016; 504 a dataset)
#   DATASETS=mnist bin/icebeem/images.sh               run MNIST's recipe, stage after stage
#   STAGES=transfer DATASETS=cifar10 bin/icebeem/images.sh device=cuda   (any KEY=VALUE is appended)
# On SLURM, one array per stage, each after the previous one:
#   for s in pretrain transfer representation mcc semisupervised; do
#     STAGES=$s bin/icebeem/images.sh --dry-run > jobs_$s.txt; done
#   a=$(sbatch --parsable --array=1-$(wc -l < jobs_pretrain.txt) bin/slurm-array jobs_pretrain.txt)
#   b=$(sbatch --parsable --dependency=afterok:$a --array=1-$(wc -l < jobs_transfer.txt) bin/slurm-array jobs_transfer.txt) ...
# All runs must record to one store (the default file store data/sims/icebeem_images, or GENLAB_MONGO):
# the later stages find the runs they build on there by config.
# Then: python -m genlab.analysis.icebeem_images (or notebooks/icebeem_images.ipynb) redraws the figures.
# Environment: DATASETS (default "mnist fashionmnist cifar10 cifar100"), STAGES (default all five, in
# order), SIZES (default "0 500 1000 2000 3000 4000 5000 6000"), TRANSFER_SEEDS (default "0 1 2 3 4"),
# REPRESENTATION_SEEDS (default 0..19), GENLAB_MONGO (record to MongoDB too).
source "$(dirname "${BASH_SOURCE[0]}")/../lib/sweep.sh"
commands() {
  local dataset stage n seed i j
  local seeds=(${REPRESENTATION_SEEDS:-$(seq 0 19)})
  for stage in ${STAGES:-pretrain transfer representation mcc semisupervised}; do
    for dataset in ${DATASETS:-mnist fashionmnist cifar10 cifar100}; do
      local run="python -m experiments.icebeem_images with $dataset"
      case "$stage" in
        pretrain) echo "$run pretrain"; echo "$run baseline" ;;
        transfer)
          for n in ${SIZES:-0 500 1000 2000 3000 4000 5000 6000}; do
            for seed in ${TRANSFER_SEEDS:-0 1 2 3 4}; do
              if [ "$n" = 0 ]; then
                echo "$run transfer_n0 seed=$seed"; echo "$run transfer_baseline_n0 seed=$seed"
              else
                echo "$run transfer dataset.first_n=$n seed=$seed"; echo "$run transfer_baseline dataset.first_n=$n seed=$seed"
              fi
            done
          done ;;
        representation)
          for seed in "${seeds[@]}"; do echo "$run representation seed=$seed"; echo "$run representation_baseline seed=$seed"; done ;;
        mcc)
          for ((i = 0; i < ${#seeds[@]}; i++)); do
            for ((j = i + 1; j < ${#seeds[@]}; j++)); do
              echo "$run mcc pair=[${seeds[i]},${seeds[j]}]"; echo "$run mcc_baseline pair=[${seeds[i]},${seeds[j]}]"
            done
          done ;;
        semisupervised) echo "$run semisupervised"; echo "$run semisupervised_baseline" ;;
        *) echo "unknown stage '$stage' (stages: pretrain transfer representation mcc semisupervised)" >&2; return 2 ;;
      esac
    done
  done
}
sweep_main "$@"
