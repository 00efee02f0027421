#!/usr/bin/env bash
# Recompute every committed record and table at smoke scale, from a clean checkout of a commit.
#
#   bash scripts/regenerate_results.sh run [COMMIT]   # compute (about 80 min on 2 cores)
#   REUSE=1 bash scripts/regenerate_results.sh run    # start from the committed records:
#                                                     # only stale or missing ones recompute
#   bash scripts/regenerate_results.sh install DIR    # copy DIR's records into results/store
#                                                     # and re-render every results/ table
#   SCALE=real SPECS="experiments/propos/table2.yaml ..." SEEDS="0 1 2" REUSE=1 \
#     bash scripts/regenerate_results.sh run            # another scale, some specs or seeds
#                                                     # (install renders SCALE's tables too)
#
# Needed whenever a change to fingerprinted code (methods, losses, models, data readers,
# training, features, evaluations, repro/launch/worker.py) makes the committed records stale:
# tests/test_committed_results.py then fails. `run` works in a detached worktree of COMMIT
# (default HEAD) so the records name a clean commit; everything it writes stays under DIR
# (printed first), and the working tree is not touched until `install`.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-$repo/.venv/bin/python}

case "${1:-}" in
run)
  commit=$(git -C "$repo" rev-parse "${2:-HEAD}")
  dir=$(mktemp -d /tmp/repro-regen.XXXXXX)
  echo "regenerating at ${commit:0:10} in $dir"
  git -C "$repo" worktree add --detach "$dir/src" "$commit" >/dev/null
  if [[ -n ${REUSE:-} ]]; then  # `repro launch` keeps every record that is still fresh
    cp -r "$dir/src/results/store" "$dir/store"
    echo "starting from the $(find "$dir/store" -name '*.json' | wc -l) committed records"
  fi
  export PYTHONPATH="$dir/src" REPRO_STORE="$dir/store" REPRO_RUNS="$dir/runs" \
    REPRO_LOGS="$dir/logs" REPRO_DATA="$dir/data" REPRO_CACHE="$dir/cache"
  # Run beside the worktree, not in it: the tables each launch writes stay out of it.
  mkdir -p "$dir/cwd"
  ln -sfn "$dir/src/experiments" "$dir/cwd/experiments"
  cd "$dir/cwd"
  # seed by seed (SEEDS="0 1 2" or "0,1,2"): each seed of every spec is complete before the
  # next starts, so `install DIR` can be run while later seeds are still computing
  seeds=${SEEDS:-}
  for seed in ${seeds//,/ } ""; do
    [[ -z $seed && -n ${SEEDS:-} ]] && break
    for spec in ${SPECS:-experiments/*/*.yaml}; do
      echo "== $spec${seed:+ seed $seed} ($(date +%T))"
      "$py" -m repro.cli launch "$spec" --scale "${SCALE:-smoke}" --executor local \
        ${seed:+--seeds "$seed"}
    done
    [[ -z $seed ]] && break
  done
  echo "done ($(date +%T)): bash scripts/regenerate_results.sh install $dir"
  ;;
install)
  dir=${2:?usage: regenerate_results.sh install DIR}
  test -d "$dir/store" || { echo "no records in $dir/store" >&2; exit 2; }
  cd "$repo"
  rm -rf results/store
  cp -r "$dir/store" results/store
  export REPRO_STORE="$repo/results/store" REPRO_DATA="$dir/data" REPRO_CACHE="$dir/cache"
  for spec in experiments/*/*.yaml; do
    "$py" -m repro.cli table "$spec" --scale smoke
  done
  for spec in ${SPECS:-}; do  # the other scale's tables (SCALE, SPECS as for run)
    "$py" -m repro.cli table "$spec" --scale "${SCALE:?SCALE with SPECS}"
  done
  git -C "$repo" worktree remove --force "$dir/src" 2>/dev/null || true
  echo "installed $(find results/store -name '*.json' | wc -l) records; commit results/"
  ;;
*)
  sed -n 2,12p "$0" >&2
  exit 2
  ;;
esac
