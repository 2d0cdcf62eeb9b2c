#!/usr/bin/env bash
# make release: the artifacts of release $VERSION (docs/maintaining.md, "Releasing") in
# _output/release/$VERSION/:
#   kube-proxy-<tag>-linux-<arch>.tar   the docker-archives of make image, one per arch
#   kube-proxy-<tag>-oci.tar            the OCI image layout (every arch), as one tar
#   kube-proxy-<tag>.digest             the image index's digest
#   kube-proxy-linux-<arch>             the static binary of each arch (as the image's)
#   RELEASE_NOTES.md                    CHANGELOG.md's entry for $VERSION
#   SHA256SUMS                          sha256sum of every file above
# Refuses (before building anything) unless: VERSION is a fork release of pkg/version.Upstream
# (vX.Y.Z+ipvs.N, N >= 1), CHANGELOG.md has one dated entry for it (not "unreleased"), the tree
# is clean, and HEAD is tagged with the image tag (vX.Y.Z-ipvs.N). What a release must have
# passed before this (make test, the S=1000 bench) is docs/maintaining.md's checklist; this
# script does not run it.
# Env: VERSION, IMAGE_TAG, LDFLAGS (from make), RELEASE_DRY_RUN=1 (checks and notes only, no
# image build), RELEASE_ALLOW_DIRTY=1 and RELEASE_ALLOW_UNTAGGED=1 (for rehearsals; noted in
# the notes), RELEASE_OUT (default _output/release).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
die() { echo "release: $*" >&2; exit 1; }
: "${VERSION:?VERSION is not set (run make release)}"
TAG=${IMAGE_TAG:-${VERSION/+/-}}
export CGO_ENABLED=0 GOFLAGS="-mod=vendor -trimpath"

UPSTREAM=$(sed -n 's/^const Upstream = "\(v[0-9.]*\)"$/\1/p' pkg/version/version.go)
[[ "$VERSION" =~ ^(v[0-9]+\.[0-9]+\.[0-9]+)\+ipvs\.([1-9][0-9]*)$ ]] ||
  die "VERSION=$VERSION is not a fork release (vX.Y.Z+ipvs.N, N >= 1; build/README.md, Versions)"
[ "${BASH_REMATCH[1]}" = "$UPSTREAM" ] || die "VERSION=$VERSION is not on the tracked upstream release $UPSTREAM (pkg/version.Upstream)"
[ "$TAG" = "${VERSION/+/-}" ] || die "IMAGE_TAG=$TAG is not VERSION's tag ${VERSION/+/-}"

OUT=${RELEASE_OUT:-$ROOT/_output/release}/$VERSION
notes=$(go run ./hack/maint/changelog -version "$VERSION" CHANGELOG.md) || die "CHANGELOG.md has no usable entry for $VERSION"
head -1 <<<"$notes" | grep -qi unreleased && die "CHANGELOG.md's entry for $VERSION says unreleased: date it (## $VERSION - YYYY-MM-DD)"
head -1 <<<"$notes" | grep -qE '[0-9]{4}-[0-9]{2}-[0-9]{2}' || die "CHANGELOG.md's entry for $VERSION has no date (## $VERSION - YYYY-MM-DD)"

caveats=()
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  [ -n "${RELEASE_ALLOW_DIRTY:-}" ] || die "the tree has uncommitted changes: a release is built from a commit"
  caveats+=("built from a tree with uncommitted changes (RELEASE_ALLOW_DIRTY): not a release")
fi
if ! git tag --points-at HEAD | grep -qxF "$TAG"; then
  [ -n "${RELEASE_ALLOW_UNTAGGED:-}" ] || die "HEAD is not tagged $TAG: git tag -a $TAG -m '$VERSION' (docs/maintaining.md)"
  caveats+=("HEAD $(git rev-parse --short HEAD) is not tagged $TAG (RELEASE_ALLOW_UNTAGGED): not a release")
fi

rm -rf "$OUT"; mkdir -p "$OUT"
{
  echo "$notes"
  echo
  echo "Image: \`ghcr.io/kube-proxy-ipvs/kube-proxy:$TAG\` (IMAGE_REPO as built), linux/amd64 and linux/arm64;"
  echo "commit $(git rev-parse HEAD), tracking upstream Kubernetes $UPSTREAM."
  for c in "${caveats[@]}"; do echo; echo "**$c**"; done
} > "$OUT/RELEASE_NOTES.md"

if [ -n "${RELEASE_DRY_RUN:-}" ]; then
  echo "release: dry run: checks passed, notes in ${OUT#"$ROOT"/}/RELEASE_NOTES.md; would run make image and write the archives and SHA256SUMS"
  cat "$OUT/RELEASE_NOTES.md"
  exit 0
fi

IMG=$OUT/.image
rm -rf "$IMG"
make --no-print-directory image VERSION="$VERSION" IMAGE_TAG="$TAG" IMAGE_OUT="$IMG"
for f in "$IMG"/kube-proxy-"$TAG"-linux-*.tar "$IMG/kube-proxy-$TAG.digest"; do
  [ -f "$f" ] || die "make image did not write $f"
  cp "$f" "$OUT/"
done
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@${SOURCE_DATE_EPOCH:-0}" \
  -C "$IMG" -cf "$OUT/kube-proxy-$TAG-oci.tar" oci
# The same command and flags as the image's kube-proxy (build/image.sh app_layer): the same bytes.
for arch in ${ARCHS:-amd64 arm64}; do
  GOARCH=$arch go build -ldflags "${LDFLAGS:?LDFLAGS is not set (run make release)}" -o "$OUT/kube-proxy-linux-$arch" ./cmd/kube-proxy
done
rm -rf "$IMG"
(cd "$OUT" && sha256sum -- * > SHA256SUMS)
echo "release: $VERSION in ${OUT#"$ROOT"/}:"
(cd "$OUT" && ls -l && cat SHA256SUMS)
