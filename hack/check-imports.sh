#!/usr/bin/env bash
# Import rules for the product (the kube-proxy binary and everything it links):
#   - no k8s.io/kubernetes/pkg/proxy/ipvs package: upstream deletes its IPVS code in v1.43, so the
#     product must not depend on it (tests may still use it as an oracle).
#   - the desired state is pure: pkg/proxy/ipvs/desired and pkg/kernel/objects (the value types it
#     names kernel objects with) import no kernel adapter and no other layer. Their own imports
#     (not their tests') must not name an adapter: the project's pkg/kernel/... (but objects), the
#     netlink and nf_tables libraries, the process runners, upstream's iptables/ipset/ipvs/conntrack
#     runners. Among everything they reach, none of the project's adapters nor the reconciler or
#     the proxier. (Upstream's k8s.io/kubernetes/pkg/proxy, which the desired state reads service
#     ports from, itself links netlink and knftables: that is why the third-party list is checked
#     on direct imports only.)
# Env: CHECK_IMPORTS_PKG (default ./cmd/kube-proxy), to check another main package.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
pkg=${CHECK_IMPORTS_PKG:-./cmd/kube-proxy}

deps=$(go list -mod=vendor -deps "$pkg")
bad='^k8s\.io/kubernetes/pkg/proxy/ipvs(/|$)'
if grep -qE "$bad" <<<"$deps"; then
  echo "check-imports: $pkg must not depend on upstream's IPVS code (k8s.io/kubernetes/pkg/proxy/ipvs/...):" >&2
  # Each offending import with the package that imports it, to find the culprit quickly.
  go list -mod=vendor -deps -f '{{.ImportPath}}{{range .Imports}} {{.}}{{end}}' "$pkg" |
    awk -v bad="$bad" '{for (i = 2; i <= NF; i++) if ($i ~ bad) print "  " $1 " imports " $i}' >&2
  exit 1
fi
echo "check-imports: ok ($(wc -l <<<"$deps") packages in $pkg, none from k8s.io/kubernetes/pkg/proxy/ipvs)"

mod=github.com/kube-proxy-ipvs/kube-proxy-ipvs
pure=("$mod/pkg/proxy/ipvs/desired" "$mod/pkg/kernel/objects")
# Direct imports a pure package must not have.
adapter_imports="^($mod/pkg/kernel/|$mod/pkg/proxy/ipvs(/reconcile)?\$)|^github\.com/(moby/ipvs|vishvananda/netlink|vishvananda/netns|mdlayher/netlink)(/|\$)|^sigs\.k8s\.io/knftables(/|\$)|^(os/exec|syscall|golang\.org/x/sys/unix|k8s\.io/utils/exec)\$|^k8s\.io/kubernetes/pkg/(util/iptables|util/ipset|util/ipvs|proxy/ipvs|proxy/conntrack)(/|\$)|^k8s\.io/component-helpers/node/util/sysctl\$"
# Packages of this module a pure package must not reach at all.
adapter_deps="^($mod/pkg/kernel/|$mod/pkg/proxy/ipvs(/reconcile)?\$)"
allowed="^$mod/pkg/kernel/objects\$"
failed=0
for p in "${pure[@]}"; do
  bad_direct=$(go list -mod=vendor -f '{{join .Imports "\n"}}' "$p" | grep -E "$adapter_imports" | grep -vE "$allowed" || true)
  if [ -n "$bad_direct" ]; then
    echo "check-imports: $p is the desired state and must not import a kernel adapter or another layer; it imports:" >&2
    sed 's/^/  /' <<<"$bad_direct" >&2
    failed=1
  fi
  bad_deps=$(go list -mod=vendor -deps "$p" | grep -E "$adapter_deps" | grep -vE "$allowed" || true)
  if [ -n "$bad_deps" ]; then
    echo "check-imports: $p is the desired state and must not reach a kernel adapter or another layer; it reaches:" >&2
    go list -mod=vendor -deps -f '{{.ImportPath}}{{range .Imports}} {{.}}{{end}}' "$p" |
      awk -v bad="$adapter_deps" -v ok="$allowed" '{for (i = 2; i <= NF; i++) if ($i ~ bad && $i !~ ok) print "  " $1 " imports " $i}' >&2
    failed=1
  fi
done
[ "$failed" = 0 ] || exit 1
echo "check-imports: ok (${pure[*]} import no kernel adapter)"
