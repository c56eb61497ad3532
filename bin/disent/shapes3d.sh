#!/usr/bin/env bash
# The 3DShapes sweep of "The Role of Disentanglement in Generalisation" (docs/disent.md §6): splits
# extrp/fhue_gt50, recomb2range/shape2ohue and shape2fhue, recomb2element/leave1out; for each,
# VAE / beta-VAE (beta 1, 8, 12), FactorVAE (gamma 20, 50, 100) and CCI-VAE with `kim` (28 commands).
# Needs data/raw/shapes3d/3dshapes.h5 (or dataset.path=...); dataset.source=standin for a smoke run.
#   bin/disent/shapes3d.sh --dry-run
# Environment: MODEL (default kim), SEEDS (default "0"), GENLAB_MONGO (record to MongoDB too).
source "$(dirname "${BASH_SOURCE[0]}")/../lib/sweep.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../lib/disent.sh"
commands() { disent_vae_sweep shapes3d; }
sweep_main "$@"
