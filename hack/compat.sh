#!/usr/bin/env bash
# make compat: kube-proxy-ipvs against each Kubernetes minor it supports (docs/compatibility.md).
#   hack/compat.sh [all|configs|apiservers|run]   (default all)
# Per release in COMPAT_RELEASES (default: the latest patch of v1.34 to v1.37 this was written for):
#   1. builds, from the release's own module file hack/compat/v1.MINOR.mod (-modfile; not
#      vendored, needs the Go module proxy or a warm cache), kubeadm's kube-proxy config writer
#      (hack/compat/kubeadmconfig) and kube-apiserver into _output/compat/v1.MINOR/ (stamped: a
#      rebuild only when the module file, the sources or the Go version change; cold, about
#      10 min per apiserver on 2 idle cores);
#   2. configs: writes the kube-proxy config files kubeadm of that release writes and compares
#      them with cmd/kube-proxy/app/testdata/kubeadm/v1.MINOR/, which the unit tests load
#      (TestKubeadmConfigs). A difference fails; COMPAT_UPDATE=1 rewrites the testdata instead;
#   3. run: starts etcd + that kube-apiserver (hack/lab/control-plane.sh, KUBE_APISERVER_BIN) and,
#      in one QEMU guest, test/e2e's TestCompat with our bin/kube-proxy: a Service of each type
#      served and changed, under each of kubeadm's ipvs configs of that release
#      (featureGates KubeProxyIPVS unset, true, false).
# Writes _output/compat-report.md (the matrix) and _output/compat/<release>.out.
# Env: COMPAT_RELEASES, COMPAT_UPDATE=1, COMPAT_TIMEOUT (guest seconds, default 1500), MEM.
# `hack/compat.sh modules` regenerates hack/compat/v1.MINOR.mod/.sum for COMPAT_RELEASES
# (network; then commit them).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=hack/lib/k8s-modules.sh
. hack/lib/k8s-modules.sh
STEP=${1:-all}
case "$STEP" in all|configs|apiservers|run|modules) ;; *) echo "usage: $0 [all|configs|apiservers|run|modules]" >&2; exit 2;; esac
RELEASES=${COMPAT_RELEASES:-v1.34.4 v1.35.4 v1.36.3 v1.37.2}
OUT=$ROOT/_output/compat
REPORT=$ROOT/_output/compat-report.md
TESTDATA=$ROOT/cmd/kube-proxy/app/testdata/kubeadm
mkdir -p "$OUT"
for r in $RELEASES; do k8s_check_release "$r" || exit 2; done

modfile_of() { echo "v1.$(k8s_minor "$1").mod"; }

if [ "$STEP" = modules ]; then
  for r in $RELEASES; do
    m=$(modfile_of "$r")
    cp hack/compat/go.mod "hack/compat/$m"
    k8s_move_module "$ROOT/hack/compat" "$r" "$m"
    echo "compat: hack/compat/$m and ${m%.mod}.sum at $r"
  done
  exit 0
fi

# build RELEASE: kubeadmconfig and kube-apiserver of RELEASE into $OUT/v1.MINOR/
build() {
  local r=$1 m dir stamp
  m=$(modfile_of "$r"); dir=$OUT/${m%.mod}
  [ -f "hack/compat/$m" ] || { echo "compat: hack/compat/$m missing: hack/compat.sh modules (COMPAT_RELEASES=$r)" >&2; return 1; }
  grep -q "^	k8s.io/kubernetes $r\$" "hack/compat/$m" || grep -q "^require k8s.io/kubernetes $r\$" "hack/compat/$m" || {
    echo "compat: hack/compat/$m does not require k8s.io/kubernetes $r: hack/compat.sh modules (COMPAT_RELEASES=$r)" >&2; return 1; }
  stamp=$(cat "hack/compat/$m" "hack/compat/${m%.mod}.sum" hack/compat/tools.go hack/compat/kubeadmconfig/main.go \
    "${BASH_SOURCE[0]}" <(go version) | sha256sum | cut -d' ' -f1)
  if [ -x "$dir/kube-apiserver" ] && [ -x "$dir/kubeadmconfig" ] && [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "compat: $r tools up to date in ${dir#"$ROOT"/}"; return 0
  fi
  mkdir -p "$dir"; rm -f "$dir/.stamp"
  local start=$SECONDS
  echo "compat: building kubeadmconfig and kube-apiserver $r (cold: about 10 min)"
  (cd hack/compat && CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false" GOWORK=off \
    go build -modfile="$m" -trimpath -ldflags="-s -w" -o "$dir/kubeadmconfig" ./kubeadmconfig &&
   CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false" GOWORK=off \
    go build -modfile="$m" -trimpath -ldflags="-s -w \
      -X k8s.io/component-base/version.gitVersion=$r -X k8s.io/component-base/version.gitMajor=1 \
      -X k8s.io/component-base/version.gitMinor=$(k8s_minor "$r")" \
      -o "$dir/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver) || return 1
  echo "$stamp" > "$dir/.stamp"
  echo "compat: $r built in $((SECONDS - start))s"
}

# configs RELEASE: kubeadm's files of RELEASE against the testdata
configs() {
  local r=$1 m tmp rc=0
  m=$(modfile_of "$r"); tmp=$(mktemp -d)
  "$OUT/${m%.mod}/kubeadmconfig" "$r" "$tmp" 2> "$OUT/$r-kubeadmconfig.log" || { cat "$OUT/$r-kubeadmconfig.log" >&2; rm -rf "$tmp"; return 1; }
  if [ -n "${COMPAT_UPDATE:-}" ]; then
    rm -rf "${TESTDATA:?}/${m%.mod}"; mkdir -p "$TESTDATA/${m%.mod}"; cp "$tmp"/*.yaml "$TESTDATA/${m%.mod}/"
    echo "compat: $r kubeadm configs written to ${TESTDATA#"$ROOT"/}/${m%.mod}/"
  elif ! diff -ru "$TESTDATA/${m%.mod}" "$tmp"; then
    echo "compat: $r: kubeadm writes other files than ${TESTDATA#"$ROOT"/}/${m%.mod}/ holds (COMPAT_UPDATE=1 rewrites them)" >&2; rc=1
  else
    echo "compat: $r kubeadm configs match the testdata"
  fi
  rm -rf "$tmp"; return $rc
}

# run RELEASE: TestCompat in a guest against RELEASE's apiserver
run() {
  local r=$1 m cp rc
  m=$(modfile_of "$r"); cp=$OUT/control-plane-$r
  KUBE_APISERVER_BIN=$OUT/${m%.mod}/kube-apiserver hack/lab/control-plane.sh start "$cp" || return 1
  # shellcheck disable=SC1091
  . "$cp/env"
  mkdir -p "$OUT/artifacts-$r"; rm -rf "${OUT:?}/artifacts-$r"/*
  set +e
  E2E_KUBECONFIG=$KUBECONFIG_GUEST E2E_ECHOSERVER=$OUT/bin/echoserver E2E_ARTIFACTS=$OUT/artifacts-$r \
  E2E_IMPLS=ours KUBE_PROXY_OURS=$ROOT/bin/kube-proxy E2E_COMPAT_RELEASE=$r E2E_COMPAT_CONFIGS=$TESTDATA/${m%.mod} \
  HOSTPORTS=$APISERVER_PORT OUT=$OUT/artifacts-$r TIMEOUT=${COMPAT_TIMEOUT:-1500} MEM=${MEM:-2G} \
    hack/lab/run-in-guest.sh "$OUT/bin/e2e.test" -test.run '^TestCompat$' -test.v -test.count=1 \
      -test.timeout="$(( ${COMPAT_TIMEOUT:-1500} - 60 ))s" > "$OUT/$r.out" 2>&1
  rc=$?
  set -e
  hack/lab/control-plane.sh stop "$cp" >/dev/null 2>&1 || true
  grep -E '^\s*(--- |ok|FAIL|PASS)|compat:' "$OUT/$r.out" | tail -20 || true
  return $rc
}

declare -A result_build result_configs result_run
start_all=$SECONDS
if [ "$STEP" = all ] || [ "$STEP" = run ]; then
  [ -n "${SKIP_INSTALL_DEPS:-}" ] || SKIP_GO_TOOLS=1 hack/install-deps.sh
  make --no-print-directory build tools
  mkdir -p "$OUT/bin"
  CGO_ENABLED=0 go build -mod=vendor -trimpath -buildvcs=false -o "$OUT/bin/echoserver" ./test/e2e/echoserver
  CGO_ENABLED=0 go test -mod=vendor -trimpath -c -o "$OUT/bin/e2e.test" ./test/e2e
fi
failed=0
for r in $RELEASES; do
  t=$SECONDS
  if build "$r"; then result_build[$r]="ok ($((SECONDS - t))s)"; else result_build[$r]=FAILED; failed=1; continue; fi
  if [ "$STEP" = all ] || [ "$STEP" = configs ]; then
    if configs "$r"; then result_configs[$r]=ok; else result_configs[$r]=FAILED; failed=1; fi
  fi
  if [ "$STEP" = all ] || [ "$STEP" = run ]; then
    t=$SECONDS
    if run "$r"; then result_run[$r]="passed ($((SECONDS - t))s)"; else result_run[$r]="FAILED ($((SECONDS - t))s, see _output/compat/$r.out)"; failed=1; fi
  fi
done

{
  echo "# Compatibility run ($(date -u +%Y-%m-%d), $(git rev-parse --short HEAD), ours $(bin/kube-proxy --version 2>/dev/null || echo "not built"))"
  echo
  echo "| apiserver / kubeadm | tools built | kubeadm configs = testdata | e2e TestCompat (ours, IPVS) |"
  echo "|---|---|---|---|"
  for r in $RELEASES; do
    echo "| $r | ${result_build[$r]:-not run} | ${result_configs[$r]:-not run} | ${result_run[$r]:-not run} |"
  done
  echo
  echo "Total $((SECONDS - start_all))s. Per release: _output/compat/<release>.out (guest output), artifacts-<release>/ (kube-proxy logs)."
} > "$REPORT"
cat "$REPORT"
exit $failed
