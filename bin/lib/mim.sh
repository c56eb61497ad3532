# Shared by bin/mim/e2.sh .. e5.sh (source it; do not run it): the grid of one MIM sweep.
# mim_grid EXPERIMENT AXIS "VALUES" "LOSSES" prints one experiments.mim command per loss x value x seed
# (SEEDS, default "1 2 3 4 5 6 7 8 9 10", the original's ten), for sweep_main (bin/lib/sweep.sh).
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"  # tiny MLPs run fastest on one thread: run several jobs side by side
source "$(dirname "${BASH_SOURCE[0]}")/sweep.sh"
mim_grid() {
  local experiment="$1" axis="$2" values="$3" losses="$4" loss value seed
  for loss in $losses; do
    for value in $values; do
      for seed in ${SEEDS:-1 2 3 4 5 6 7 8 9 10}; do
        echo "python -m experiments.mim with $experiment training.$loss $axis=$value seed=$seed"
      done
    done
  done
}
