# Shared by the bin/disent/ sweeps (source it after sweep.sh): the generalisation splits of each
# dataset that the paper's sweeps run (docs/disent.md §6), and the VAE-family sweep over them.

# "condition variant" lines of a dataset's swept splits
disent_splits() {
  case "$1" in
    dsprites) printf '%s\n' "extrp blank_side" "recomb2range shape2tx" "recomb2element leave1out" ;;
    shapes3d) printf '%s\n' "extrp fhue_gt50" "recomb2range shape2ohue" "recomb2range shape2fhue" "recomb2element leave1out" ;;
    mpi3d) printf '%s\n' "extrp horz_gt20" "extrp objc_gt3" "recomb2range cyl2horz" "recomb2range objc2horz" "recomb2element leave1out" ;;
    *) echo "no sweep defined for dataset $1" >&2; return 2 ;;
  esac
}

# the paper's VAE-family sweep on one dataset: beta-VAE beta 1/8/12, FactorVAE gamma 20/50/100,
# CCI-VAE, for every split, SEEDS seeds each, architecture MODEL (default kim)
disent_vae_sweep() {
  local dataset="$1" condition variant seed beta gamma
  while read -r condition variant; do
    local data="dataset.$dataset dataset.condition=$condition dataset.variant=$variant model.${MODEL:-kim}"
    for seed in ${SEEDS:-0}; do
      for beta in 1 8 12; do
        echo "python -m experiments.disent with $data training.beta_vae training.loss.beta=$beta seed=$seed"
      done
      for gamma in 20 50 100; do
        echo "python -m experiments.disent with $data training.factor_vae training.loss.gamma=$gamma seed=$seed"
      done
      echo "python -m experiments.disent with $data training.cci_vae seed=$seed"
    done
  done < <(disent_splits "$dataset")
}
