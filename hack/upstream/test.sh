#!/usr/bin/env bash
# make upstream-patches: applies hack/upstream/*.patch, in order, to k8s.io/kubernetes at the
# tracked release and runs the patched packages' unit tests (docs/upstream.md).
#
#   hack/upstream/test.sh          apply, test, remove the tree
#   hack/upstream/test.sh -keep    leave the tree (a git repository, one commit per patch) for
#                                  editing; it prints where. Regenerate the series from it with
#                                  `git format-patch --zero-commit --no-signature -o hack/upstream base`
#                                  (see hack/upstream/README.md)
#
# The module zip of k8s.io/kubernetes has no staging/ (those are modules of their own), so the
# tree is made buildable: go.mod's `k8s.io/X => ./staging/src/k8s.io/X` replaces point at the
# published k8s.io/X v0.<minor>.<patch> instead, except for the staging modules a patch touches,
# which are copied from the module cache into staging/ so the patch applies there as in a
# kubernetes checkout. Only go.mod, go.sum, cmd/, pkg/, test/ and third_party/ are copied. Builds
# use the flags of hack/build-tools.sh, so a machine that built the lab's tools has most
# dependencies compiled already.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
HERE=$PWD

UPSTREAM_VERSION=${UPSTREAM_VERSION:-v1.37.2}
STAGING_VERSION=v0.${UPSTREAM_VERSION#v1.}
KEEP=0
[ "${1:-}" = -keep ] && KEEP=1

# Each test package with what to run: the new tests always; the whole package too unless
# UPSTREAM_QUICK=1 (the whole packages catch a patch that breaks an existing test).
PKGS=(./pkg/proxy/iptables/ ./pkg/proxy/nftables/ ./pkg/proxy/apis/config/... ./cmd/kube-proxy/app/)
NEW_TESTS='^(TestMasqueradeRandomFully|TestNodeIPNotCaptured|TestValidateMasqueradeRandomFully|TestDefaultsKubeProxyConfiguration|TestRoundTripFuzzing|TestLoadConfig)$'

export CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false -trimpath" GOWORK=off
t0=$SECONDS
src=$(go mod download -json "k8s.io/kubernetes@$UPSTREAM_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
[ -d "$src" ] || { echo "upstream: k8s.io/kubernetes@$UPSTREAM_VERSION not in the module cache" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/upstream-patches.XXXXXX")
if [ "$KEEP" = 0 ]; then
  trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
fi
tree=$work/kubernetes
mkdir -p "$tree"
for p in go.mod go.sum cmd pkg test third_party; do cp -R "$src/$p" "$tree/"; done

# Staging modules the series touches: from the module cache, at the matching version.
staged=$(sed -n 's#^+++ b/staging/src/k8s.io/\([^/]*\)/.*#\1#p' "$HERE"/[0-9][0-9][0-9][0-9]-*.patch | sort -u)
for m in $staged; do
  dir=$(go mod download -json "k8s.io/$m@$STAGING_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  mkdir -p "$tree/staging/src/k8s.io"
  cp -R "$dir" "$tree/staging/src/k8s.io/$m"
done
chmod -R u+w "$tree"
keep_re=$(printf '%s|' $staged)
sed -i -E "/=> \.\/staging\/src\/k8s\.io\/(${keep_re%|})\$/!s#^(\s*)(k8s\.io/[a-z0-9-]+) => \./staging/src/k8s\.io/[a-z0-9-]+\$#\1\2 => \2 $STAGING_VERSION#" "$tree/go.mod"

cd "$tree"
git init -q && git add -A && git -c user.name=upstream -c user.email=upstream@localhost commit -qm "k8s.io/kubernetes $UPSTREAM_VERSION (module source)"
git tag base
for p in "$HERE"/[0-9][0-9][0-9][0-9]-*.patch; do
  if ! git -c user.name=upstream -c user.email=upstream@localhost am -q --keep-cr "$p"; then
    git am --abort 2>/dev/null || true
    echo "upstream: FAILED to apply $(basename "$p") to k8s.io/kubernetes $UPSTREAM_VERSION" >&2
    exit 1
  fi
  echo "upstream: applied $(basename "$p")"
done
echo "upstream: tree ready in $((SECONDS - t0))s"

if [ "$KEEP" = 1 ]; then
  echo "upstream: tree kept in $tree (tag 'base' is the unpatched release)"
  echo "  cd $tree && CGO_ENABLED=0 GOFLAGS='$GOFLAGS' GOWORK=off go test ${PKGS[*]}"
  exit 0
fi

unformatted=$(gofmt -l $(git diff --name-only base -- '*.go'))
[ -z "$unformatted" ] || { echo "upstream: not gofmt'ed: $unformatted" >&2; exit 1; }

# The new (and touched) tests, by name, then the whole packages.
if ! go test -vet=off -count=1 -run "$NEW_TESTS" -v "${PKGS[@]}" >"$work/new-tests.log" 2>&1; then
  cat "$work/new-tests.log"
  echo "upstream: FAILED: the patches' tests (above)" >&2
  exit 1
fi
grep -E '^(--- (PASS|FAIL)|ok|FAIL)' "$work/new-tests.log"
if [ "${UPSTREAM_QUICK:-0}" != 1 ]; then
  go test -vet=off "${PKGS[@]}" || { echo "upstream: FAILED: the patched packages' tests" >&2; exit 1; }
fi
echo "upstream: patches apply to $UPSTREAM_VERSION and their tests pass ($((SECONDS - t0))s)"
