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
#   E2E_TIMEOUT  guest timeout (default: 420 s per seed + 600)
# Output: _output/parity-report.md; dumps of every phase in _output/parity/artifacts/parity/seed-N.
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
export E2E_RUN='^TestParity$' E2E_OUTDIR=${E2E_OUTDIR:-$ROOT/_output/parity} E2E_REPORT=${E2E_REPORT:-$ROOT/_output/parity-report.md}
export E2E_TIMEOUT=${E2E_TIMEOUT:-$(( SEEDS * 420 + 600 ))}
rc=0; hack/e2e.sh || rc=$?
echo "parity: $SEEDS seed(s), variants $E2E_PARITY_VARIANTS, took $((SECONDS - T0))s (status $rc)"
exit "$rc"
