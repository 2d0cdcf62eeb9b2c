#!/usr/bin/env bash
# make parity: the differential test (test/e2e/parity_test.go, docs/parity.md). Upstream kube-proxy
# v1.37.2 and ours, each in its own node namespace with the same addresses and flags, are given the
# same generated cluster states; their normalized kernel state must match but for the allowed
# differences written down in test/e2e/parity_compare_test.go.
# Env:
#   SEEDS        number of seeds (default 20), from SEED_BASE (default: a random one, printed)
#   PARITY_SEED  replay exactly this seed (overrides SEEDS)
#   VARIANTS     comma-separated configuration variants, "all" (every one on every seed: slow, 12
#                kube-proxies at once), or "rotate" (default: "default" plus one other variant
#                chosen by the seed, so 5 seeds cover all): default, masqall, nodeportaddrs,
#                sched, strictarp, timeouts
#   PHASES       change phases after the initial state (default 2; the first moves node1's zone)
#   JOBS         guests at once (default 2; 1 when replaying): the seeds are split into JOBS
#                ranges of consecutive seeds, each in its own guest with its own control plane
#                (timings in docs/parity.md)
#   E2E_TIMEOUT  guest timeout (default: 720 s per seed of a guest + 600)
# Output: _output/parity-report.md; dumps of every phase in _output/parity/artifacts/parity/seed-N
# (JOBS > 1: _output/parity/jobJ/artifacts/..., each guest's log in _output/parity/jobJ.log).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
T0=$SECONDS
SEEDS=${SEEDS:-20}
SEED_BASE=${SEED_BASE:-$(( (RANDOM << 15 | RANDOM) % 1000000 + 1 ))}
if [ -n "${PARITY_SEED:-}" ]; then
  export E2E_PARITY_SEED=$PARITY_SEED; SEEDS=1
  echo "parity: replaying PARITY_SEED=$PARITY_SEED"
else
  export E2E_PARITY_SEEDS=$SEEDS E2E_PARITY_SEED_BASE=$SEED_BASE
  echo "parity: $SEEDS seeds from $SEED_BASE (replay one with PARITY_SEED=N make parity)"
fi
export E2E_PARITY_VARIANTS=${VARIANTS:-rotate} E2E_PARITY_PHASES=${PHASES:-2}
# The host-side tests of the generator and the comparison first (seconds, no lab).
CGO_ENABLED=0 go test -mod=vendor -trimpath -count=1 -run 'TestParity(Gen|Normalize|Diff)' ./test/e2e
export E2E_RUN='^TestParity$'
OUTD=${E2E_OUTDIR:-$ROOT/_output/parity} REPORT=${E2E_REPORT:-$ROOT/_output/parity-report.md}
JOBS=${JOBS:-2}
[ -z "${PARITY_SEED:-}" ] || JOBS=1
[ "$JOBS" -ge 1 ] 2>/dev/null || { echo "parity: JOBS=$JOBS: want a number >= 1" >&2; exit 2; }
[ "$JOBS" -le "$SEEDS" ] || JOBS=$SEEDS
per=$(( (SEEDS + JOBS - 1) / JOBS ))
export E2E_TIMEOUT=${E2E_TIMEOUT:-$(( per * 720 + 600 ))}
rc=0
if [ "$JOBS" = 1 ]; then
  E2E_OUTDIR=$OUTD E2E_REPORT=$REPORT hack/e2e.sh || rc=$?
else
  # The guests build the same test binaries: build them once first (the Go cache serves the rest).
  CGO_ENABLED=0 go test -mod=vendor -trimpath -c -o /dev/null ./test/e2e
  mkdir -p "$OUTD"; pids=()
  for ((j = 0; j < JOBS; j++)); do
    n=$(( SEEDS - j * per )); [ "$n" -le "$per" ] || n=$per
    [ "$n" -gt 0 ] || break
    E2E_PARITY_SEEDS=$n E2E_PARITY_SEED_BASE=$(( SEED_BASE + j * per )) E2E_OUTDIR=$OUTD/job$j \
      E2E_REPORT=$OUTD/job$j-report.md hack/e2e.sh >"$OUTD/job$j.log" 2>&1 &
    pids+=("$!")
    echo "parity: guest $j: seeds $(( SEED_BASE + j * per ))-$(( SEED_BASE + j * per + n - 1 )), log $OUTD/job$j.log"
  done
  for j in "${!pids[@]}"; do wait "${pids[$j]}" || rc=1; done
  { echo "# make parity: $SEEDS seeds from $SEED_BASE in $JOBS guests"; echo
    for j in "${!pids[@]}"; do echo "## guest $j"; echo; cat "$OUTD/job$j-report.md" 2>/dev/null; echo; done
  } >"$REPORT"
  # One line per seed (its time or its failure), from every guest.
  grep -hE 'PARITY_SEED=[0-9]+ took|--- (PASS|FAIL): TestParity/seed=|unexpected difference' "$OUTD"/job*.log | sed 's/^ *//' || true
fi
echo "parity: $SEEDS seed(s) in $JOBS guest(s), variants $E2E_PARITY_VARIANTS, took $((SECONDS - T0))s (status $rc); report $REPORT"
exit "$rc"
