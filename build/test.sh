#!/usr/bin/env bash
# make image-test: builds the image twice into two output directories and checks
#   - both builds give the same index digest (reproducible), both archs are in the index,
#     the labels/annotations are there and right;
#   - each docker-archive: manifest.json's RepoTags, the config's and layers' digests; skopeo
#     reads the layout and the archives;
#   - the amd64 root filesystem: the files kube-proxy runs are there, no shell, no apt/dpkg, no script;
#   - kube-proxy (static) runs from it: --version, --version=raw (commit, build date);
#   - as root, with containerd: ctr imports both archives as kind does, and the amd64 image runs;
#   - as root: in a chroot, in a new network namespace (the host's rules are not read or
#     touched), the Debian binaries find their libraries, and iptables-wrapper picks nft on an
#     empty node, legacy where kubelet's hint is in legacy, nft where it is in nft;
# and prints the image sizes per arch and the two builds' times.
# Env: as build/image.sh (VERSION, IMAGE_TAG, LDFLAGS from make); IMAGE_TEST_OUT (default
# _output/image-test).
set -euo pipefail
export LC_ALL=C
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
: "${VERSION:?run make image-test}"
TAG=${IMAGE_TAG:-${VERSION/+/-}}
REPO=${IMAGE_REPO:-ghcr.io/kube-proxy-ipvs/kube-proxy}
T=${IMAGE_TEST_OUT:-$ROOT/_output/image-test}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
ARCHS=(amd64 arm64)
rm -rf "$T"; mkdir -p "$T"

fails=0
ok() { echo "image-test: ok   $*"; }
bad() { echo "image-test: FAIL $*"; fails=$((fails + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

# --- build twice -------------------------------------------------------------------------------
times=()
for b in a b; do
  s=$SECONDS
  IMAGE_OUT=$T/$b ARCHS="${ARCHS[*]}" build/image.sh 2>&1 | sed "s/^/  [$b] /"
  times+=("$b: $((SECONDS - s))s")
done
da=$(cat "$T/a/kube-proxy-$TAG.digest"); db=$(cat "$T/b/kube-proxy-$TAG.digest")
check "same index digest from two builds ($da)" [ "$da" = "$db" ]
O=$T/a
blob() { cat "$O/oci/blobs/sha256/${1#sha256:}"; }

# --- the OCI layout ---------------------------------------------------------------------------
top=$(jq -r '.manifests[0].digest' "$O/oci/index.json")
check "index.json names $da" [ "$top" = "$da" ]
check "index.json ref name $TAG" [ "$(jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"]' "$O/oci/index.json")" = "$TAG" ]
check "blobs match their digests" bash -c "cd '$O/oci/blobs/sha256' && for f in *; do echo \"\$f  \$f\"; done | sha256sum -c --quiet"
platforms=$(blob "$da" | jq -r '[.manifests[].platform | .os + "/" + .architecture] | join(" ")')
check "index has linux/amd64 and linux/arm64 ($platforms)" [ "$platforms" = "linux/amd64 linux/arm64" ]
created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
upstream=$(sed -n 's/^const Upstream = "\(.*\)"$/\1/p' pkg/version/version.go)
ann() { blob "$da" | jq -r --arg k "$1" '.annotations[$k]'; }
check "annotation version $VERSION" [ "$(ann org.opencontainers.image.version)" = "$VERSION" ]
check "annotation revision = HEAD" [ "$(ann org.opencontainers.image.revision)" = "$(git rev-parse HEAD)" ]
check "annotation licenses Apache-2.0" [ "$(ann org.opencontainers.image.licenses)" = "Apache-2.0" ]
check "annotation created $created" [ "$(ann org.opencontainers.image.created)" = "$created" ]
check "annotation source" [ -n "$(ann org.opencontainers.image.source | grep '^https://')" ]
check "annotation upstream-version $upstream" [ "$(ann io.kube-proxy-ipvs.upstream-version)" = "$upstream" ]

# --- the docker archives ----------------------------------------------------------------------
declare -A gz raw
for arch in "${ARCHS[@]}"; do
  a=$T/arc-$arch; mkdir -p "$a"
  tar -xf "$O/kube-proxy-$TAG-linux-$arch.tar" -C "$a"
  check "$arch archive RepoTags [$REPO:$TAG]" [ "$(jq -c '[.[].RepoTags[]]' "$a/manifest.json")" = "[\"$REPO:$TAG\"]" ]
  cfg=$(jq -r '.[0].Config' "$a/manifest.json")
  check "$arch archive config digest matches its name" [ "$(sha256sum "$a/$cfg" | cut -d' ' -f1).json" = "$cfg" ]
  check "$arch config architecture" [ "$(jq -r .architecture "$a/$cfg")" = "$arch" ]
  check "$arch config label revision" [ "$(jq -r '.config.Labels["org.opencontainers.image.revision"]' "$a/$cfg")" = "$(git rev-parse HEAD)" ]
  diffs=$(jq -r '.rootfs.diff_ids | join(" ")' "$a/$cfg")
  layers=$(for l in $(jq -r '.[0].Layers[]' "$a/manifest.json"); do echo -n "sha256:$(sha256sum "$a/$l" | cut -d' ' -f1) "; done)
  check "$arch layers match the config's diff_ids" [ "${layers% }" = "$diffs" ]
  # The OCI manifest of this arch: the same config.
  man=$(blob "$da" | jq -r --arg a "$arch" '.manifests[] | select(.platform.architecture == $a) | .digest')
  check "$arch OCI manifest has the archive's config" [ "$(blob "$man" | jq -r .config.digest)" = "sha256:${cfg%.json}" ]
  gz[$arch]=$(blob "$man" | jq '[.layers[].size] | add')
  raw[$arch]=$(for l in $(jq -r '.[0].Layers[]' "$a/manifest.json"); do stat -c %s "$a/$l"; done | awk '{s += $1} END {print s}')
done

# An independent reader (skopeo, containers/image, the library podman and cri-o use): the
# layout's index with every arch, and each docker-archive, copied out blob by blob.
if command -v skopeo >/dev/null; then
  check "skopeo copies the OCI layout's index, every arch" skopeo copy -q --all "oci:$O/oci:$TAG" "dir:$T/skopeo-oci"
  for arch in "${ARCHS[@]}"; do
    check "skopeo copies the $arch docker-archive" skopeo copy -q "docker-archive:$O/kube-proxy-$TAG-linux-$arch.tar" "oci:$T/skopeo-$arch:$TAG"
    got=$(skopeo inspect --override-arch "$arch" "oci:$O/oci:$TAG" | jq -r .Architecture || true)
    check "skopeo resolves the index for $arch" [ "$got" = "$arch" ]
  done
else
  echo "image-test: skip the skopeo checks (hack/install-deps.sh installs it)"
fi

# --- the amd64 root filesystem -----------------------------------------------------------------
R=$T/rootfs-amd64; mkdir -p "$R"
for l in $(jq -r '.[0].Layers[]' "$T/arc-amd64/manifest.json"); do tar -xf "$T/arc-amd64/$l" -C "$R"; done
for f in go-runner usr/local/bin/kube-proxy usr/sbin/iptables-wrapper usr/sbin/xtables-legacy-multi usr/sbin/xtables-nft-multi \
  usr/sbin/nft usr/sbin/ipset usr/bin/kmod; do
  check "/$f is an executable file" [ -f "$R/$f" -a -x "$R/$f" ]
done
for f in iptables-legacy iptables-legacy-save iptables-legacy-restore ip6tables-legacy-save iptables-nft \
  iptables-nft-save iptables-nft-restore ip6tables-nft-save modprobe; do
  check "/usr/sbin/$f is there" [ -e "$R/usr/sbin/$f" ]
done
for f in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
  check "/usr/sbin/$f -> iptables-wrapper" [ "$(readlink "$R/usr/sbin/$f")" = iptables-wrapper ]
done
# Static: an ELF without a program interpreter (readelf from binutils, hack/install-deps.sh).
static() { readelf -lW "$1" | grep -q 'Program Headers' && ! readelf -lW "$1" | grep -q INTERP; }
for f in usr/local/bin/kube-proxy usr/sbin/iptables-wrapper go-runner; do check "/$f is static" static "$R/$f"; done
check "entrypoint /go-runner, as upstream's image" [ "$(jq -c .config.Entrypoint "$T/arc-amd64/$(jq -r '.[0].Config' "$T/arc-amd64/manifest.json")")" = '["/go-runner"]' ]
ncert=$(grep -c 'BEGIN CERTIFICATE' "$R/etc/ssl/certs/ca-certificates.crt" || true)
check "CA bundle has $ncert certificates" [ "$ncert" -gt 100 ]
for f in bin/sh usr/bin/sh usr/bin/dash usr/bin/bash usr/bin/apt usr/bin/apt-get usr/bin/dpkg usr/bin/perl var/lib/dpkg/status; do
  check "no /$f" [ ! -e "$R/$f" -a ! -L "$R/$f" ]
done
scripts=$(find "$R" -type f -size +1c -exec sh -c 'for f; do [ "$(head -c2 "$f")" = "#!" ] && echo "$f"; done' _ {} + || true)
check "no script (nothing to run it)" [ -z "$scripts" ]
check "no manual or locale" [ ! -e "$R/usr/share/man" -a ! -e "$R/usr/share/locale" ]
check "status.d lists the packages" [ "$(ls "$R/var/lib/dpkg/status.d" | wc -l)" = "$(grep -c '^amd64 ' build/packages.lock)" ]
check "/etc/os-release names Debian 12" grep -q 'VERSION_ID="12"' "$R/usr/lib/os-release"

out=$("$R/usr/local/bin/kube-proxy" --version)
check "kube-proxy --version: $out" [ "$out" = "Kubernetes $VERSION (kube-proxy-ipvs $VERSION, tracking upstream $upstream)" ]
raw_v=$("$R/usr/local/bin/kube-proxy" --version=raw)
check "kube-proxy --version=raw has the commit" grep -q "GitCommit:\"$(git rev-parse HEAD)\"" <<<"$raw_v"
check "kube-proxy --version=raw has the build date $created" grep -q "BuildDate:\"$created\"" <<<"$raw_v"
check "kube-proxy --version=raw has GitVersion $VERSION" grep -q "GitVersion:\"$VERSION\"" <<<"$raw_v"

# --- chroot: libraries resolve, the wrapper decides -------------------------------------------
if [ "$(id -u)" = 0 ] && unshare --net --mount --pid --fork true 2>/dev/null; then
  # What a container runtime provides: /proc (mounted per call below) and /dev/null.
  mkdir -p "$R/proc" "$R/dev" && mknod -m 666 "$R/dev/null" c 1 3
  # A new network, mount and PID namespace: a fresh, empty netfilter state; /proc of its own.
  inns() { unshare --net --mount --pid --fork --mount-proc="$R/proc" chroot "$R" "$@"; }
  inns_sh() { unshare --net --mount --pid --fork --mount-proc="$R/proc" sh -c "$1"; }
  reset() { for n in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do ln -sfn iptables-wrapper "$R/usr/sbin/$n"; done; }
  for c in "/usr/sbin/iptables-legacy-save" "/usr/sbin/ip6tables-legacy-save" "/usr/sbin/iptables-nft-save" \
    "/usr/sbin/iptables-legacy --version" "/usr/sbin/nft --version" "/usr/sbin/ipset --version" \
    "/usr/sbin/modprobe --version" "/usr/sbin/iptables-wrapper --help"; do
    check "chroot: $c runs" bash -c "unshare --net --mount --pid --fork --mount-proc='$R/proc' chroot '$R' $c >/dev/null"
  done
  got=$(inns /go-runner /usr/local/bin/kube-proxy --version 2>&1 || true)
  check "chroot: /go-runner /usr/local/bin/kube-proxy --version prints the version" grep -q "^Kubernetes $VERSION " <<<"$got"
  reset
  got=$(inns /usr/sbin/iptables-wrapper detect || true)
  check "wrapper on an empty node: $got" grep -q '^nft ' <<<"$got"
  got=$(inns /usr/sbin/iptables --version || true)
  check "iptables --version on an empty node: $got" grep -q 'nf_tables' <<<"$got"
  check "first call pointed the names at nft" [ "$(readlink "$R/usr/sbin/ip6tables-restore")" = xtables-nft-multi ]
  reset
  got=$(inns_sh "chroot '$R' /usr/sbin/iptables-legacy -t mangle -N KUBE-IPTABLES-HINT && chroot '$R' /usr/sbin/iptables-save -t mangle" || true)
  check "kubelet's hint in legacy: iptables-save runs legacy" grep -q 'KUBE-IPTABLES-HINT' <<<"$got"
  check "kubelet's hint in legacy: names point at legacy" [ "$(readlink "$R/usr/sbin/iptables")" = xtables-legacy-multi ]
  reset
  got=$(inns_sh "chroot '$R' /usr/sbin/ip6tables-nft -t mangle -N KUBE-KUBELET-CANARY && chroot '$R' /usr/sbin/iptables-legacy -t nat -A POSTROUTING -j ACCEPT && chroot '$R' /usr/sbin/iptables-wrapper detect" || true)
  check "kubelet's canary in nft (IPv6), a legacy rule: $got" grep -q '^nft ' <<<"$got"
  reset
  got=$(inns_sh "chroot '$R' /usr/sbin/iptables-legacy -t nat -A POSTROUTING -j ACCEPT && chroot '$R' /usr/sbin/iptables-wrapper detect" || true)
  check "no hint, a legacy rule: $got" grep -q '^legacy ' <<<"$got"
  reset
else
  echo "image-test: skip the chroot checks (need root and unshare)"
fi

# --- containerd: what `ctr images import` and `kind load image-archive` do ---------------------
# A private containerd (its own root, state and socket; no CRI plugin), stopped at the end. kind
# runs `ctr -n k8s.io images import --all-platforms --digests --snapshotter=... -` on the node.
# Then the amd64 image runs as a container (runc, its own network namespace: the host's rules
# are not touched): go-runner starts kube-proxy, and iptables-wrapper decides.
if [ "$(id -u)" = 0 ] && command -v containerd >/dev/null && command -v ctr >/dev/null && command -v runc >/dev/null; then
  CD=$T/containerd
  sock=$(mktemp -d /tmp/image-test-ctr.XXXXXX) # a socket path must stay short
  mkdir -p "$CD"
  printf '%s\n' 'version = 2' "root = \"$CD/root\"" "state = \"$sock/state\"" \
    'disabled_plugins = ["io.containerd.grpc.v1.cri"]' \
    '[grpc]' "  address = \"$sock/containerd.sock\"" '[ttrpc]' "  address = \"$sock/containerd-ttrpc.sock\"" \
    >"$CD/config.toml"
  containerd --config "$CD/config.toml" >"$CD/log" 2>&1 &
  cpid=$!
  trap 'kill $cpid 2>/dev/null; wait $cpid 2>/dev/null; rm -rf "$sock"' EXIT
  C=(ctr --address "$sock/containerd.sock" -n k8s.io)
  for _ in $(seq 50); do "${C[@]}" version >/dev/null 2>&1 && break; sleep 0.2; done
  for arch in "${ARCHS[@]}"; do
    check "ctr images import (kind's flags) takes the $arch archive" \
      "${C[@]}" images import --all-platforms --digests --snapshotter native "$O/kube-proxy-$TAG-linux-$arch.tar"
    got=$("${C[@]}" images ls -q | grep -cxF "$REPO:$TAG" || true)
    check "containerd names it $REPO:$TAG" [ "$got" = 1 ]
    "${C[@]}" images rm "$REPO:$TAG" >/dev/null 2>&1 || true
  done
  "${C[@]}" images import --snapshotter native "$O/kube-proxy-$TAG-linux-amd64.tar" >/dev/null
  got=$(timeout 120 "${C[@]}" run --rm --snapshotter native "$REPO:$TAG" image-test-version \
    /go-runner /usr/local/bin/kube-proxy --version 2>&1 || true)
  check "container: /go-runner /usr/local/bin/kube-proxy --version prints the version" grep -q "^Kubernetes $VERSION " <<<"$got"
  got=$(timeout 120 "${C[@]}" run --rm --snapshotter native --privileged "$REPO:$TAG" image-test-wrapper \
    /usr/sbin/iptables-wrapper detect 2>&1 || true)
  check "container (privileged, own netns): iptables-wrapper detect: $got" grep -q '^nft ' <<<"$got"
  kill $cpid; wait $cpid 2>/dev/null || true
  rm -rf "$sock" "$CD/root"; trap - EXIT # its content store and snapshots: about 500 MB
else
  echo "image-test: skip the containerd checks (need root, containerd, ctr, runc)"
fi

# --- sizes -------------------------------------------------------------------------------------
echo "image-test: sizes (compressed = the OCI layers' gzip, what a registry stores and a node pulls;"
echo "image-test:        uncompressed = the layers' tar, about the unpacked root filesystem)"
for arch in "${ARCHS[@]}"; do
  awk -v a="$arch" -v g="${gz[$arch]}" -v r="${raw[$arch]}" 'BEGIN {
    printf "image-test:   linux/%-6s compressed %6.1f MB (%d B), uncompressed %6.1f MB (%d B)\n", a, g / 1e6, g, r / 1e6, r }'
done
echo "image-test: build times: ${times[*]}"
if [ "$fails" -gt 0 ]; then echo "image-test: $fails checks FAILED"; exit 1; fi
echo "image-test: all checks passed"
