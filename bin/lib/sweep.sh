# Shared by the bin/ sweep scripts (source it; do not run it).
# A sweep script defines `commands` (printing one experiment command per line, `python -m ...`)
# and calls `sweep_main "$@"`:
#   --dry-run        print the commands and exit (feed them to bin/slurm-array on a cluster)
#   KEY=VALUE ...    extra Sacred config updates appended to every command
# Without --dry-run the commands run one after another with the project venv; runs are recorded
# under data/sims/ and, when GENLAB_MONGO is set, in that MongoDB too.
set -euo pipefail
GENLAB_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

sweep_main() {
  local dry=0 extra=()
  for a in "$@"; do
    case "$a" in
      --dry-run) dry=1 ;;
      -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
      *=*) extra+=("$a") ;;
      *) echo "unknown argument: $a (use --dry-run or KEY=VALUE config updates)" >&2; exit 2 ;;
    esac
  done
  local lines
  mapfile -t lines < <(commands | sed "s|\$| ${extra[*]:-}|; s| *\$||")
  if [ "$dry" = 1 ]; then
    printf '%s\n' "${lines[@]}"
    return 0
  fi
  "$GENLAB_ROOT/bin/setup"
  export PATH="$GENLAB_ROOT/.venv/bin:$PATH"
  cd "$GENLAB_ROOT"
  local i=0
  for line in "${lines[@]}"; do
    i=$((i + 1))
    echo "[$i/${#lines[@]}] $line" >&2
    bash -c "$line"
  done
}
