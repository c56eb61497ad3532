#!/usr/bin/env bash
# The dSprites sweep of "The Role of Disentanglement in Generalisation" (docs/disent.md §6): for each of
# the three generalisation splits, VAE / beta-VAE (beta 1, 8, 12), FactorVAE (gamma 20, 50, 100)
# and CCI-VAE, with the `kim` architecture, SEEDS seeds each (default: 1 seed, 0).
#   bin/disent/dsprites.sh --dry-run                  list the 21 commands
#   bin/disent/dsprites.sh dataset.source=generated   run them on the generated dSprites
#   bin/disent/dsprites.sh --dry-run > jobs.txt && sbatch --array=1-$(wc -l < jobs.txt) bin/slurm-array jobs.txt
# Environment: MODEL (default kim), SEEDS (default "0"), GENLAB_MONGO (record to MongoDB too).
source "$(dirname "${BASH_SOURCE[0]}")/../lib/sweep.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../lib/disent.sh"
commands() { disent_vae_sweep dsprites; }
sweep_main "$@"
