#!/usr/bin/env bash
# Import rules for the product (the kube-proxy binary and everything it links):
#   - no k8s.io/kubernetes/pkg/proxy/ipvs package: upstream deletes its IPVS code in v1.43, so the
#     product must not depend on it (tests may still use it as an oracle).
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
