#!/usr/bin/env bash
# The MPI3D-real sweep of "The Role of Disentanglement in Generalisation" (docs/disent.md §6, the active
# part of the original's run-disent.sh): splits extrp/horz_gt20 and objc_gt3, recomb2range/cyl2horz
# and objc2horz, recomb2element/leave1out; for each, VAE / beta-VAE (beta 1, 8, 12), FactorVAE
# (gamma 20, 50, 100) and CCI-VAE with `kim` (35 commands).
# Needs data/raw/mpi3d/mpi3d_real.npz (or dataset.path=...); dataset.source=standin for a smoke run.
#   bin/disent/mpi3d.sh --dry-run
# Environment: MODEL (default kim), SEEDS (default "0"), GENLAB_MONGO (record to MongoDB too).
source "$(dirname "${BASH_SOURCE[0]}")/../lib/sweep.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../lib/disent.sh"
commands() { disent_vae_sweep mpi3d; }
sweep_main "$@"
