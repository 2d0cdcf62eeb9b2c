#!/usr/bin/env bash
# hack/bump-upstream.sh vX.Y.Z: moves kube-proxy-ipvs to upstream Kubernetes release vX.Y.Z
# (docs/maintaining.md, "Moving to an upstream release").
#
#   1. checks: the version string, a clean tree (tracked files), the release in the Go module proxy;
#   2. moves (all or nothing: any failure restores every file it touched from git):
#      go.mod (k8s.io/kubernetes, every staging module's require and replace, klog/utils/...),
#      hack/tools/go.mod (upstream's kube-proxy, kube-apiserver and etcd for the lab), vendor/
#      (go mod tidy && go mod vendor), pkg/version.Upstream and .Fork, the Makefile's VERSION
#      (vX.Y.Z+ipvs.1: a new upstream release starts the fork's count again), and an undated
#      CHANGELOG.md entry for it;
#   3. regenerates hack/maint/surface/testdata/upstream-kube-proxy.txt (upstream's flags, config
#      fields, defaults and proxy feature gates);
#   4. runs the checks, each even if an earlier one failed: go build, make verify, make unit,
#      hack/build-tools.sh FORCE=1 (upstream's binaries at vX.Y.Z for the lab);
#   5. writes what needs a person to _output/bump/<old>-to-<new>/ and prints its summary:
#      report.md, surface.diff (new/removed flags, config fields, defaults, gates),
#      proxy-api.diff (exported API of the k8s.io/kubernetes/pkg/proxy/... packages the product
#      imports), ipvs.diff (upstream's pkg/proxy/ipvs between the two releases, while it exists),
#      and the files that still name the old release (docs, comments).
# A failed check leaves the tree moved (the report says what failed): fixing the fork's code is
# the person's part. To abandon: git checkout -- . && git clean -fd vendor hack/maint.
# Env: BUMP_SKIP_CHECKS=1 (moves and reports only), BUMP_SKIP_TOOLS=1 (no upstream binaries),
#      BUMP_ALLOW_DIRTY=1 (no clean-tree check; then a failed move cannot be restored from git
#      and the script refuses to start instead).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# The Makefile's build configuration, so the checks reuse the build cache of make unit/verify.
export CGO_ENABLED=0 GOFLAGS="-mod=vendor -trimpath"
# shellcheck source=hack/lib/k8s-modules.sh
. hack/lib/k8s-modules.sh

die() { echo "bump-upstream: $*" >&2; exit 1; }
[ $# = 1 ] || die "usage: $0 vX.Y.Z (a Kubernetes release, e.g. v1.37.3)"
NEW=$1
k8s_check_release "$NEW" || exit 1
command -v jq >/dev/null || die "jq is needed (apt-get install jq)"

OLD=$(sed -n 's/^const Upstream = "\(v[0-9.]*\)"$/\1/p' pkg/version/version.go)
[ -n "$OLD" ] || die "cannot read the tracked release (const Upstream) from pkg/version/version.go"
[ "$NEW" != "$OLD" ] || die "already at $NEW"
OLDGO=$(gomod edit -json | jq -r '.Require[] | select(.Path == "k8s.io/kubernetes") | .Version')
[ "$OLDGO" = "$OLD" ] || die "go.mod requires k8s.io/kubernetes $OLDGO but pkg/version.Upstream says $OLD: fix that first"

# Every file the move writes; restored from git when the move fails.
TOUCHED=(go.mod go.sum vendor hack/tools/go.mod hack/tools/go.sum pkg/version/version.go Makefile CHANGELOG.md
         hack/maint/surface/testdata/upstream-kube-proxy.txt)
if [ -n "$(git status --porcelain --untracked-files=no -- "${TOUCHED[@]}")" ]; then
  die "uncommitted changes in $(git status --porcelain --untracked-files=no -- "${TOUCHED[@]}" | awk '{print $2}' | sort -u | head -5 | tr '\n' ' '): commit or drop them first (a failed move is undone from git)"
fi

echo "bump-upstream: $OLD -> $NEW"
echo "bump-upstream: looking up k8s.io/kubernetes@$NEW in $(go env GOPROXY)"
k8s_upstream_gomod "$NEW" >/dev/null || die "no such release: nothing changed"
OLDSRC=$(k8s_upstream_src "$OLD") || die "cannot read $OLD's source from the module cache or proxy"
NEWSRC=$(k8s_upstream_src "$NEW") || die "cannot download $NEW's source"

OUT=$ROOT/_output/bump/$OLD-to-$NEW
rm -rf "$OUT"; mkdir -p "$OUT"
cp hack/maint/surface/testdata/upstream-kube-proxy.txt "$OUT/surface-$OLD.txt"
# The upstream proxy packages the product imports, read before the move (vendor/ is still OLD's).
go list -mod=vendor -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' ./cmd/kube-proxy |
  grep -E '^k8s\.io/kubernetes/pkg/proxy(/|$)' | sort > "$OUT/proxy-packages.txt" || true

restore() {
  echo "bump-upstream: the move failed; restoring ${TOUCHED[*]} from git" >&2
  git checkout -q HEAD -- "${TOUCHED[@]}" 2>/dev/null || true
  git clean -fdq -- vendor hack/maint/surface/testdata CHANGELOG.md.new || true
  echo "bump-upstream: restored; nothing changed" >&2
}
trap 'restore' ERR

# --- the move ---
echo "bump-upstream: moving go.mod"
k8s_move_module "$ROOT" "$NEW"
echo "bump-upstream: moving hack/tools/go.mod"
k8s_move_module "$ROOT/hack/tools" "$NEW"
echo "bump-upstream: go mod vendor"
gomod vendor
NEWMINOR=$(k8s_minor "$NEW")
sed -i -e "s/^const Upstream = \"$OLD\"$/const Upstream = \"$NEW\"/" \
       -e "s/^var Fork = \"$OLD+ipvs.dev\"$/var Fork = \"$NEW+ipvs.dev\"/" pkg/version/version.go
grep -q "^const Upstream = \"$NEW\"$" pkg/version/version.go || { echo "pkg/version/version.go: const Upstream not rewritten" >&2; false; }
sed -i -e "s/^VERSION ?= .*/VERSION ?= $NEW+ipvs.1/" Makefile
grep -q "^VERSION ?= $NEW+ipvs.1$" Makefile || { echo "Makefile: VERSION not rewritten" >&2; false; }
# An undated entry for the new version, above the others (make release refuses it until dated).
if ! grep -q "^## $NEW+ipvs.1\b" CHANGELOG.md; then
  awk -v v="$NEW+ipvs.1" -v old="$OLD" -v new="$NEW" '
    !done && /^## / { print "## " v " (unreleased)\n\n- Tracks upstream Kubernetes " new " (was " old ").\n"; done = 1 }
    { print }' CHANGELOG.md > CHANGELOG.md.new && mv CHANGELOG.md.new CHANGELOG.md
fi
trap - ERR
echo "bump-upstream: moved to $NEW (go.mod, hack/tools, vendor/, pkg/version, Makefile VERSION $NEW+ipvs.1)"

# --- checks ---
failed=()
check() { # check NAME COMMAND...: runs it, logs to $OUT/NAME.log, records a failure
  local name=$1 start=$SECONDS; shift
  echo "bump-upstream: $name ..."
  if "$@" >"$OUT/$name.log" 2>&1; then echo "bump-upstream: $name ok ($((SECONDS - start))s)"
  else echo "bump-upstream: $name FAILED ($((SECONDS - start))s): $OUT/$name.log"; tail -15 "$OUT/$name.log" | sed 's/^/    /'; failed+=("$name"); fi
}
check surface go test -mod=vendor ./hack/maint/surface -run TestSurfaceCurrent -count=1 -args -update
if [ -z "${BUMP_SKIP_CHECKS:-}" ]; then
  check build go build -mod=vendor ./...
  check verify make --no-print-directory verify
  check unit make --no-print-directory unit
  [ -n "${BUMP_SKIP_TOOLS:-}" ] || check tools env FORCE=1 hack/build-tools.sh
fi

# --- what needs a person ---
diff -u "$OUT/surface-$OLD.txt" hack/maint/surface/testdata/upstream-kube-proxy.txt \
  --label "upstream $OLD" --label "upstream $NEW" > "$OUT/surface.diff" || true
: > "$OUT/proxy-api.diff"
while read -r pkg; do
  rel=${pkg#k8s.io/kubernetes/}
  if [ ! -d "$NEWSRC/$rel" ]; then echo "### $pkg: REMOVED in $NEW" >> "$OUT/proxy-api.diff"; continue; fi
  go run -mod=vendor ./hack/maint/apisurface "$OLDSRC/$rel" > "$OUT/api-old" 2>/dev/null || true
  go run -mod=vendor ./hack/maint/apisurface "$NEWSRC/$rel" > "$OUT/api-new" 2>/dev/null || true
  diff -u "$OUT/api-old" "$OUT/api-new" --label "$pkg@$OLD" --label "$pkg@$NEW" >> "$OUT/proxy-api.diff" || true
done < "$OUT/proxy-packages.txt"
rm -f "$OUT/api-old" "$OUT/api-new"
if [ -d "$OLDSRC/pkg/proxy/ipvs" ] || [ -d "$NEWSRC/pkg/proxy/ipvs" ]; then
  diff -ruN "$OLDSRC/pkg/proxy/ipvs" "$NEWSRC/pkg/proxy/ipvs" > "$OUT/ipvs.diff" || true
  sed -i "s#$OLDSRC#k8s.io/kubernetes@$OLD#g; s#$NEWSRC#k8s.io/kubernetes@$NEW#g" "$OUT/ipvs.diff"
fi
git grep -l -F "$OLD" -- . ':!vendor' ':!go.sum' ':!hack/tools/go.sum' ':!docs/bench-reports' ':!CHANGELOG.md' ':!hack/compat/*.mod' ':!hack/compat/*.sum' ':!cmd/kube-proxy/app/testdata/kubeadm' > "$OUT/names-old-release.txt" || true

count() { grep -c "$1" "$2" 2>/dev/null || true; }
surface_section() { # surface_section NAME FILE: the lines of the "## NAME" section of a surface file
  awk -v s="## $1" 'index($0, "## ") == 1 { in_ = index($0, s) == 1; next } in_ && NF' "$2"
}
{
  echo "# Bump $OLD -> $NEW ($(date -u +%Y-%m-%d), $(git rev-parse --short HEAD))"
  echo
  echo "Checks: $([ ${#failed[@]} = 0 ] && echo "all passed" || echo "FAILED: ${failed[*]}")$([ -n "${BUMP_SKIP_CHECKS:-}" ] && echo " (BUMP_SKIP_CHECKS: only the surface ran)")"
  echo
  echo "## Flags, config fields, defaults, gates (surface.diff)"
  for section in flags "config fields" defaults "feature gates"; do
    changes=$({ diff <(surface_section "$section" "$OUT/surface-$OLD.txt") \
                     <(surface_section "$section" hack/maint/surface/testdata/upstream-kube-proxy.txt) || true; } |
              sed -n 's/^< /    removed: /p; s/^> /    added:   /p')
    if [ -n "$changes" ]; then echo "- $section:"; echo "$changes"; else echo "- $section: no change"; fi
  done
  echo
  echo "## Exported API of the upstream proxy packages the product imports (proxy-api.diff)"
  echo "$(wc -l < "$OUT/proxy-packages.txt") packages; changed: $(grep -c '^--- ' "$OUT/proxy-api.diff" || true), removed: $(count 'REMOVED' "$OUT/proxy-api.diff")"
  { grep -E '^(--- |### )' "$OUT/proxy-api.diff" || true; } | sed 's/^--- /- /; s/^### /- /' 
  echo
  echo "## Upstream IPVS proxier changes (ipvs.diff)"
  if [ -f "$OUT/ipvs.diff" ]; then
    echo "$(grep -c '^diff ' "$OUT/ipvs.diff" || true) files differ; +$(grep -c '^+[^+]' "$OUT/ipvs.diff" || true) -$(grep -c '^-[^-]' "$OUT/ipvs.diff" || true) lines. Each is a fix to consider porting to pkg/proxy/ipvs."
    { grep '^diff ' "$OUT/ipvs.diff" || true; } | awk '{print "- " $NF}' 
  else
    echo "upstream has no pkg/proxy/ipvs at either release: nothing to port"
  fi
  echo
  echo "## Files that still name $OLD (docs and comments to review)"
  sed 's/^/- /' "$OUT/names-old-release.txt"
} > "$OUT/report.md"
cat "$OUT/report.md"
echo
echo "bump-upstream: report and diffs in ${OUT#"$ROOT"/}/"
if [ ${#failed[@]} -gt 0 ]; then
  echo "bump-upstream: the tree is moved to $NEW but checks failed: ${failed[*]} (fix, or abandon with git checkout -- . && git clean -fd vendor)" >&2
  exit 1
fi
echo "bump-upstream: done; review the report, then commit"
