#!/usr/bin/env bash
# The IPVS benchmark: upstream kube-proxy v1.37.2 vs ours on the lab's real kernel (test/bench).
#   make bench        BENCH_SIZES="1000 5000 10000", BENCH_STEADY=300
#   make bench-short  S=200, short windows (part of make test: keeps the harness working)
# Per size S: benchctl populates the host apiserver (cumulatively: Services 0..S-1, each with an
# EndpointSlice of 10 endpoints), then ONE guest boot measures the floor, upstream and ours
# (test/bench/bench_test.go). Finally benchctl writes _output/bench-report.md and fails when a row is
# missing (harness broken; timings never fail it).
# Env: BENCH_SIZES, BENCH_STEADY (s), BENCH_STRACE (s), BENCH_CHANGES, BENCH_COLD_TIMEOUT (s; also
#      bounds the wait for the first whole sync: upstream took 45 min at S=10000),
#      BENCH_CHANGE_BUDGET (s; the change phase stops after it once 4 changes are done: a proxier
#      that resyncs everything takes a cold start per change), BENCH_CHANGE_TIMEOUT (s),
#      BENCH_PPROF (s of CPU profile of ours from its start; profiles go to _output/bench/),
#      BENCH_IMPLS, MEM (guest RAM; default 2G, 4G when a size >= 5000), BENCH_TIMEOUT (guest
#      seconds per size; default scales with S), KUBE_PROXY_UPSTREAM, KUBE_PROXY_OURS,
#      BENCH_REPORT (default _output/bench-report.md), SKIP_INSTALL_DEPS=1.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SIZES=${BENCH_SIZES:-1000 5000 10000}
OUTD=$ROOT/_output/bench; REPORT=${BENCH_REPORT:-$ROOT/_output/bench-report.md}
mkdir -p "$OUTD/bin"; rm -f "$OUTD"/bench-*.json
export BENCH_STEADY=${BENCH_STEADY:-300} BENCH_STRACE=${BENCH_STRACE:-65} BENCH_CHANGES=${BENCH_CHANGES:-50}
export BENCH_COLD_TIMEOUT=${BENCH_COLD_TIMEOUT:-5400} BENCH_PPROF=${BENCH_PPROF:-0} BENCH_IMPLS=${BENCH_IMPLS:-upstream,ours}
export BENCH_CHANGE_BUDGET=${BENCH_CHANGE_BUDGET:-1200} BENCH_CHANGE_TIMEOUT=${BENCH_CHANGE_TIMEOUT:-300}

[ -n "${SKIP_INSTALL_DEPS:-}" ] || SKIP_GO_TOOLS=1 hack/install-deps.sh
hack/build-tools.sh
export CGO_ENABLED=0
go test -mod=vendor -trimpath -c -o "$OUTD/bin/bench.test" ./test/bench
go build -mod=vendor -trimpath -buildvcs=false -o "$OUTD/bin/benchctl" ./test/bench/benchctl
export KUBE_PROXY_UPSTREAM=$(realpath -m "${KUBE_PROXY_UPSTREAM:-$ROOT/_output/tools/bin/kube-proxy}")
export KUBE_PROXY_OURS=$(realpath -m "${KUBE_PROXY_OURS:-$ROOT/bin/kube-proxy}")

CP=$OUTD/control-plane
cleanup() { hack/lab/control-plane.sh stop "$CP" >/dev/null 2>&1 || true; }
trap cleanup EXIT
NODE_PORT_RANGE=30000-39999 hack/lab/control-plane.sh start "$CP"
# shellcheck disable=SC1091
. "$CP/env"

rc=0
for S in $SIZES; do
  t=$SECONDS
  "$OUTD/bin/benchctl" populate -kubeconfig "$KUBECONFIG_HOST" -s "$S"
  echo "bench: S=$S populated in $((SECONDS - t))s"
  mem=${MEM:-$([ "$S" -ge 5000 ] && echo 4G || echo 2G)}
  to=${BENCH_TIMEOUT:-$(( 900 + 2 * (BENCH_STEADY + BENCH_STRACE + BENCH_CHANGE_BUDGET) + S * 3 / 10 + BENCH_COLD_TIMEOUT ))}
  t=$SECONDS
  set +e
  BENCH_S=$S BENCH_KUBECONFIG=$KUBECONFIG_GUEST BENCH_OUT=$OUTD \
  PASSENV="BENCH_S BENCH_KUBECONFIG BENCH_OUT BENCH_STEADY BENCH_STRACE BENCH_CHANGES BENCH_COLD_TIMEOUT BENCH_PPROF BENCH_IMPLS BENCH_CHANGE_BUDGET BENCH_CHANGE_TIMEOUT" \
  HOSTPORTS=$APISERVER_PORT OUT=$OUTD TIMEOUT=$to MEM=$mem \
    hack/lab/run-in-guest.sh "$OUTD/bin/bench.test" -test.v -test.count=1 -test.run '^TestBench$' \
      -test.timeout="$((to - 30))s" | tee "$OUTD/bench-$S.out"
  r=${PIPESTATUS[0]}
  set -e
  echo "bench: S=$S guest run took $((SECONDS - t))s (exit $r)"
  [ "$r" = 0 ] || rc=$r
done

rrc=0
"$OUTD/bin/benchctl" report -in "$OUTD" -out "$REPORT" -sizes "$SIZES" \
  -note "Command: BENCH_SIZES=\"$SIZES\" BENCH_IMPLS=$BENCH_IMPLS BENCH_STEADY=$BENCH_STEADY BENCH_STRACE=$BENCH_STRACE\
 BENCH_CHANGES=$BENCH_CHANGES BENCH_CHANGE_BUDGET=$BENCH_CHANGE_BUDGET hack/bench.sh" || rrc=$?
echo; cat "$REPORT"; echo "bench: report in ${REPORT#"$ROOT"/}, logs and profiles in ${OUTD#"$ROOT"/}"
[ "$rc" = 0 ] || { echo "bench: FAILED (guest test exit status $rc)" >&2; exit "$rc"; }
exit "$rrc"
