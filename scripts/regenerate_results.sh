#!/usr/bin/env bash
# Recompute every committed record and table at smoke scale, from a clean checkout of a commit.
#
#   bash scripts/regenerate_results.sh run [COMMIT]   # compute (about 80 min on 2 cores)
#   REUSE=1 bash scripts/regenerate_results.sh run    # start from the committed records:
#                                                     # only stale or missing ones recompute
#   bash scripts/regenerate_results.sh install DIR    # merge DIR's new records into results/store
#                                                     # and re-render every results/ table
#   SCALE=real SPECS="experiments/propos/table2.yaml ..." SEEDS="0 1 2" REUSE=1 \
#     bash scripts/regenerate_results.sh run            # another scale, some specs or seeds
#                                                     # (install renders SCALE's tables too)
#   DIR=/tmp/repro-regen.XXXXXX bash scripts/regenerate_results.sh run  # go on after an
#                                                     # interruption (same commit, same folder)
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
  if [[ -n ${DIR:-} ]]; then  # go on in the folder of an interrupted run: its records,
    dir=$DIR                    # checkpoints (resumed) and worktree are kept
    test -d "$dir/src" || { echo "no worktree in $dir" >&2; exit 2; }
    commit=$(git -C "$dir/src" rev-parse HEAD)
    echo "going on at ${commit:0:10} in $dir ($(find "$dir/store" -name '*.json' 2>/dev/null | wc -l) records)"
  else
    commit=$(git -C "$repo" rev-parse "${2:-HEAD}")
    dir=$(mktemp -d /tmp/repro-regen.XXXXXX)
    echo "regenerating at ${commit:0:10} in $dir"
    git -C "$repo" worktree add --detach "$dir/src" "$commit" >/dev/null
    if [[ -n ${REUSE:-} ]]; then  # `repro launch` keeps every record that is still fresh
      cp -r "$dir/src/results/store" "$dir/store"
      echo "starting from the $(find "$dir/store" -name '*.json' | wc -l) committed records"
    fi
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
  # merge, never replace: a record of DIR comes in when results/store lacks its key or holds an
  # older computation of it (provenance.time); every other committed record stays as it is
  "$py" - "$dir/store" results/store <<'PY'
import json, shutil, sys
from pathlib import Path
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
took = 0
for path in sorted(src.glob("*/*.json")):
    target = dst / path.parent.name / path.name
    def when(p):
        return json.loads(p.read_text()).get("provenance", {}).get("time", "")
    if not target.exists() or when(path) > when(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
        took += 1
print(f"took {took} record(s) from {src}")
PY
  export REPRO_STORE="$repo/results/store" REPRO_DATA="$dir/data" REPRO_CACHE="$dir/cache"
  if [[ -z ${SCALE:-} || ${SCALE:-} == smoke ]]; then  # DIR/data holds the fixtures run wrote
    for spec in experiments/*/*.yaml; do
      "$py" -m repro.cli table "$spec" --scale smoke
    done
  fi
  for spec in ${SPECS:-}; do  # another scale's tables (SCALE, SPECS as for run); the smoke
    "$py" -m repro.cli table "$spec" --scale "${SCALE:?SCALE with SPECS}"  # ones stay as they are
  done
  git -C "$repo" worktree remove --force "$dir/src" 2>/dev/null || true
  echo "installed $(find results/store -name '*.json' | wc -l) records; commit results/"
  ;;
*)
  sed -n 2,12p "$0" >&2
  exit 2
  ;;
esac
