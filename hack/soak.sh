#!/usr/bin/env bash
# The soak (issue 27): OUR kube-proxy alone at S Services for SOAK_DURATION under a steady,
# bounded churn of Services and EndpointSlices, with a client counting failed connections to
# Services whose backends run in the guest; RSS, Go heap, goroutines, fds and sync durations
# sampled every SOAK_SAMPLE; at the end the kernel state it programmed is compared with what a
# fresh kube-proxy programs from the same objects in a fresh network (test/bench/soak_test.go).
#   make soak                       SOAK_DURATION=60m SOAK_SIZE=1000
#   SOAK_DURATION=5m make soak      a smoke run
# A report, never a timed test: it fails only when the harness breaks (or the guest times out).
# Env: SOAK_DURATION (Go duration, default 60m), SOAK_SIZE (default 1000), SOAK_RATE (API changes
#      per second, default 2), SOAK_SAMPLE (default 30s), SOAK_SETTLE (default 180s), SOAK_SEED,
#      SOAK_NOTE (text under the report's title), SOAK_REPORT (default _output/soak-report.md),
#      KUBE_PROXY_OURS (default bin/kube-proxy), MEM (guest RAM, default 2G), SOAK_TIMEOUT (guest
#      seconds; default the duration + settle + 30 min), SKIP_INSTALL_DEPS=1.
# Output: _output/soak/ (soak.json, soak-report.md, the proxier's and pods' logs, the guest's
# output soak.out); the report is copied to SOAK_REPORT.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUTD=$ROOT/_output/soak; REPORT=${SOAK_REPORT:-$ROOT/_output/soak-report.md}
export SOAK_DURATION=${SOAK_DURATION:-60m} SOAK_S=${SOAK_SIZE:-1000} SOAK_RATE=${SOAK_RATE:-2}
export SOAK_SAMPLE=${SOAK_SAMPLE:-30s} SOAK_SETTLE=${SOAK_SETTLE:-180s} SOAK_SEED=${SOAK_SEED:-1}
export SOAK_NOTE=${SOAK_NOTE:-}

secs() { # a Go duration (or seconds) in whole seconds: 1h30m, 5m, 90s, 300
  local d=$1 total=0 n u
  [[ $d =~ ^[0-9]+$ ]] && { echo "$d"; return; }
  while [[ $d =~ ^([0-9]+)(h|m|s)(.*)$ ]]; do
    n=${BASH_REMATCH[1]}; u=${BASH_REMATCH[2]}; d=${BASH_REMATCH[3]}
    case $u in h) total=$((total + n * 3600));; m) total=$((total + n * 60));; s) total=$((total + n));; esac
  done
  [ -z "$d" ] || { echo "soak: cannot read the duration $1 (use e.g. 60m, 1h, 90s)" >&2; return 1; }
  echo "$total"
}
dur=$(secs "$SOAK_DURATION"); settle=$(secs "$SOAK_SETTLE")
to=${SOAK_TIMEOUT:-$((dur + settle + 1800))}

[ -n "${SKIP_INSTALL_DEPS:-}" ] || SKIP_GO_TOOLS=1 hack/install-deps.sh
hack/build-tools.sh # kube-apiserver and etcd (upstream's kube-proxy is not used)
export CGO_ENABLED=0
rm -rf "$OUTD"; mkdir -p "$OUTD/bin"
go test -mod=vendor -trimpath -c -o "$OUTD/bin/bench.test" ./test/bench
go build -mod=vendor -trimpath -buildvcs=false -o "$OUTD/bin/benchctl" ./test/bench/benchctl
go build -mod=vendor -trimpath -buildvcs=false -o "$OUTD/bin/echoserver" ./test/e2e/echoserver
export KUBE_PROXY_OURS=$(realpath -m "${KUBE_PROXY_OURS:-$ROOT/bin/kube-proxy}")
[ -x "$KUBE_PROXY_OURS" ] || { echo "soak: no kube-proxy at $KUBE_PROXY_OURS (make build)" >&2; exit 1; }

CP=$OUTD/control-plane
cleanup() { hack/lab/control-plane.sh stop "$CP" >/dev/null 2>&1 || true; }
trap cleanup EXIT
NODE_PORT_RANGE=30000-39999 hack/lab/control-plane.sh start "$CP"
# shellcheck disable=SC1091
. "$CP/env"
t=$SECONDS
"$OUTD/bin/benchctl" populate -kubeconfig "$KUBECONFIG_HOST" -s "$SOAK_S"
echo "soak: S=$SOAK_S populated in $((SECONDS - t))s; guest run: $SOAK_DURATION of churn + $SOAK_SETTLE settling (TIMEOUT=${to}s)"

t=$SECONDS
set +e
SOAK_KUBECONFIG=$KUBECONFIG_GUEST SOAK_OUT=$OUTD SOAK_ECHOSERVER=$OUTD/bin/echoserver \
PASSENV="SOAK_S SOAK_KUBECONFIG SOAK_OUT SOAK_ECHOSERVER SOAK_DURATION SOAK_RATE SOAK_SAMPLE SOAK_SETTLE SOAK_SEED SOAK_NOTE" \
HOSTPORTS=$APISERVER_PORT OUT=$OUTD TIMEOUT=$to MEM=${MEM:-2G} \
  hack/lab/run-in-guest.sh "$OUTD/bin/bench.test" -test.v -test.count=1 -test.run '^TestSoak$' \
    -test.timeout="$((to - 60))s" | tee "$OUTD/soak.out"
rc=${PIPESTATUS[0]}
set -e
echo "soak: guest run took $((SECONDS - t))s (exit $rc)"
[ "$rc" = 125 ] && echo "soak: the guest died or timed out (TIMEOUT=${to}s)" >&2
if [ -f "$OUTD/soak-report.md" ]; then
  mkdir -p "$(dirname "$REPORT")"; cp "$OUTD/soak-report.md" "$REPORT"
  echo; cat "$REPORT"; echo "soak: report in ${REPORT#"$ROOT"/}, data and logs in ${OUTD#"$ROOT"/}"
else
  echo "soak: no report (see ${OUTD#"$ROOT"/}/soak.out)" >&2; [ "$rc" != 0 ] || rc=1
fi
exit "$rc"
