#!/usr/bin/env bash
# Builds the kube-proxy-ipvs image without Docker or any daemon (build/README.md): Debian
# bookworm's .debs for each architecture, at the versions build/packages.lock pins, unpacked with
# dpkg-deb (no maintainer script runs), pruned distroless-style; our static kube-proxy and
# iptables-wrapper on top; assembled by build/oci into
#   $IMAGE_OUT/oci/                                  OCI image layout, index for every arch
#   $IMAGE_OUT/kube-proxy-<tag>-linux-<arch>.tar      docker-archive per arch
#   $IMAGE_OUT/kube-proxy-<tag>.digest                the index digest
# Run by `make image`, which passes VERSION, IMAGE_TAG and LDFLAGS.
# Env:
#   IMAGE_OUT          output directory (default _output/images)
#   IMAGE_CACHE        apt indexes and .debs, kept between builds (default _output/cache/image)
#   IMAGE_REPO         repository in the archives' tags (default ghcr.io/kube-proxy-ipvs/kube-proxy)
#   IMAGE_SOURCE       org.opencontainers.image.source (default https://github.com/kube-proxy-ipvs/kube-proxy-ipvs)
#   ARCHS              default "amd64 arm64"
#   SOURCE_DATE_EPOCH  every timestamp in the image (default: the commit's time)
#   UPDATE_LOCK=1      resolve the package set again from Debian's current indexes and rewrite
#                      build/packages.lock (the only step that picks versions)
#   APT_UPDATE=1       refresh the cached apt indexes first
set -euo pipefail
umask 022
export LC_ALL=C
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

: "${VERSION:?VERSION is not set (run make image)}"
: "${LDFLAGS:?LDFLAGS is not set (run make image)}"
TAG=${IMAGE_TAG:-${VERSION/+/-}}
OUT=${IMAGE_OUT:-$ROOT/_output/images}
CACHE=${IMAGE_CACHE:-$ROOT/_output/cache/image}
REPO=${IMAGE_REPO:-ghcr.io/kube-proxy-ipvs/kube-proxy}
SOURCE=${IMAGE_SOURCE:-https://github.com/kube-proxy-ipvs/kube-proxy-ipvs}
ARCHS=${ARCHS:-amd64 arm64}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
LOCK=$ROOT/build/packages.lock
GO=${GO:-go}
export CGO_ENABLED=0 GOFLAGS="-mod=vendor -trimpath"

# What kube-proxy runs: iptables (both backends), nft (mode: nftables), ipset, modprobe (kmod);
# CA certificates; the C library they link; base-files for /etc/os-release and the license texts
# the copyright files refer to. The closure of their Depends is taken, less what only a package
# manager or a maintainer script uses.
ROOTS=(iptables nftables ipset kmod ca-certificates netbase base-files libc6)
EXCLUDE=(debconf openssl mawk gcc-12-base libgcc-s1)

log() { echo "image: [${SECONDS}s] $*" >&2; }
OUT=$(mkdir -p "$OUT" && cd "$OUT" && pwd)
CACHE=$(mkdir -p "$CACHE" && cd "$CACHE" && pwd)
WORK=$OUT/.work
rm -rf "$WORK"
mkdir -p "$WORK" "$CACHE/debs"

# --- apt, one configuration per architecture, nothing of the host's apt state touched --------
aptconf() { # aptconf ARCH: writes the arch's apt config, prints its path
  local arch=$1 d=$CACHE/apt/$1
  mkdir -p "$d/etc/apt.conf.d" "$d/etc/preferences.d" "$d/etc/sources.list.d" "$d/lists/partial" \
    "$d/cache/archives/partial" "$d/state"
  [ -e "$d/status" ] || : >"$d/status"
  cat >"$d/etc/sources.list" <<EOF
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-updates main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
EOF
  cat >"$d/apt.conf" <<EOF
Dir::Etc "$d/etc";
Dir::Etc::SourceList "$d/etc/sources.list";
Dir::Etc::SourceParts "$d/etc/sources.list.d";
Dir::Etc::Parts "$d/etc/apt.conf.d";
Dir::Etc::Preferences "$d/etc/preferences";
Dir::Etc::PreferencesParts "$d/etc/preferences.d";
Dir::State "$d/state";
Dir::State::Lists "$d/lists";
Dir::State::status "$d/status";
Dir::Cache "$d/cache";
APT::Architecture "$arch";
APT::Architectures { "$arch"; };
APT::Install-Recommends "false";
Acquire::Languages "none";
APT::Sandbox::User "root";
Debug::NoLocking "true";
EOF
  echo "$d/apt.conf"
}
apt_for() { local arch=$1; shift; APT_CONFIG=$(aptconf "$arch") apt-get -q "$@"; }
apt_update() { # apt_update ARCH: fetch the arch's indexes when missing or asked to
  local arch=$1
  if [ -n "${APT_UPDATE:-}" ] || ! ls "$CACHE/apt/$arch/lists/"*_Packages >/dev/null 2>&1; then
    log "apt-get update ($arch)"
    apt_for "$arch" update >/dev/null
  fi
}

# --- the package lock ---------------------------------------------------------------------------
# build/packages.lock: "ARCH PACKAGE VERSION SHA256" per line, one per package per architecture.
resolve() { # resolve ARCH: prints the lock lines of the closure of ROOTS less EXCLUDE
  local arch=$1 tmp name version
  apt_update "$arch"
  tmp=$WORK/resolve-$arch
  mkdir -p "$tmp"
  apt_for "$arch" install -s "${ROOTS[@]}" | awk '/^Inst /{print $2, substr($3, 2)}' | sort >"$tmp/closure"
  grep -vxF -f <(printf '%s\n' "${EXCLUDE[@]}") <(cut -d' ' -f1 "$tmp/closure") >"$tmp/names" || true
  while read -r name version; do
    grep -qxF "$name" "$tmp/names" || continue
    echo "$name=$version"
  done <"$tmp/closure" >"$tmp/wanted"
  (cd "$tmp" && apt_for "$arch" download $(cat wanted) >/dev/null)
  while read -r name version; do
    grep -qxF "$name" "$tmp/names" || continue
    local f sum
    f=$(ls "$tmp/${name}_"*.deb)
    sum=$(sha256sum "$f" | cut -d' ' -f1)
    mv "$f" "$CACHE/debs/$sum.deb"
    echo "$arch $name $version $sum"
  done <"$tmp/closure"
}

if [ -n "${UPDATE_LOCK:-}" ] || [ ! -s "$LOCK" ]; then
  log "resolving the package set from Debian's current indexes into build/packages.lock"
  {
    echo "# Debian bookworm packages in the kube-proxy-ipvs image: ARCH PACKAGE VERSION SHA256 (of the .deb)."
    echo "# Written by UPDATE_LOCK=1 make image (build/image.sh); build/README.md says when to refresh it."
    for arch in $ARCHS; do resolve "$arch"; done
  } >"$LOCK.new"
  mv "$LOCK.new" "$LOCK"
fi

fetch() { # fetch ARCH: puts every locked .deb of ARCH in the cache, checked against its SHA256
  local arch=$1 missing=() name version sum f tmp=$WORK/fetch-$1
  while read -r a name version sum; do
    [ "$a" = "$arch" ] || continue
    [ -f "$CACHE/debs/$sum.deb" ] || missing+=("$name=$version")
  done < <(grep -v '^#' "$LOCK")
  [ ${#missing[@]} -gt 0 ] || return 0
  log "downloading ${#missing[@]} packages ($arch)"
  apt_update "$arch"
  mkdir -p "$tmp"
  if ! (cd "$tmp" && apt_for "$arch" download "${missing[@]}" >/dev/null); then
    log "apt-get download failed; refreshing the indexes once"
    APT_UPDATE=1 apt_update "$arch"
    (cd "$tmp" && apt_for "$arch" download "${missing[@]}" >/dev/null) || {
      log "a locked version is no longer in Debian's archive (a security update replaced it?):"
      log "run UPDATE_LOCK=1 make image and commit build/packages.lock (build/README.md)"
      exit 1
    }
  fi
  while read -r a name version sum; do
    [ "$a" = "$arch" ] || continue
    [ -f "$CACHE/debs/$sum.deb" ] && continue
    f=$(ls "$tmp/${name}_"*.deb)
    if [ "$(sha256sum "$f" | cut -d' ' -f1)" != "$sum" ]; then
      log "$f: SHA256 differs from build/packages.lock"; exit 1
    fi
    mv "$f" "$CACHE/debs/$sum.deb"
  done < <(grep -v '^#' "$LOCK")
}

# --- the Debian layer -------------------------------------------------------------------------
triplet() { case $1 in amd64) echo x86_64-linux-gnu ;; arm64) echo aarch64-linux-gnu ;; *) log "unknown arch $1"; exit 1 ;; esac; }

base_layer() { # base_layer ARCH DIR
  local arch=$1 dir=$2 tri name version sum deb
  tri=$(triplet "$arch")
  mkdir -p "$dir"/usr/{bin,sbin,lib,lib64} "$dir/var/lib/dpkg/status.d" "$dir/etc/ssl/certs"
  # Debian bookworm is merged-/usr: /bin, /sbin, /lib, /lib64 are links into /usr, and the
  # packages' files under them land there (tar --keep-directory-symlink).
  ln -s usr/bin "$dir/bin"; ln -s usr/sbin "$dir/sbin"; ln -s usr/lib "$dir/lib"; ln -s usr/lib64 "$dir/lib64"
  local bf=$WORK/base-files-$arch
  while read -r a name version sum; do
    [ "$a" = "$arch" ] || continue
    deb=$CACHE/debs/$sum.deb
    if [ "$name" = base-files ]; then
      mkdir -p "$bf"; dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$bf" --no-same-owner
    else
      dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dir" --keep-directory-symlink --no-same-owner
    fi
    # For image scanners (Trivy, Grype read distroless' status.d): what is installed, at what version.
    { dpkg-deb -f "$deb" Package Source Version Architecture Maintainer Homepage
      echo "Status: install ok installed"; } >"$dir/var/lib/dpkg/status.d/$name"
  done < <(grep -v '^#' "$LOCK")
  # From base-files only the OS identification and the license texts copyright files cite.
  mkdir -p "$dir/usr/share/common-licenses" "$dir/usr/share/doc/base-files"
  cp "$bf/usr/lib/os-release" "$dir/usr/lib/os-release"
  ln -s ../usr/lib/os-release "$dir/etc/os-release"
  cp "$bf/etc/debian_version" "$dir/etc/debian_version"
  cp -r "$bf/usr/share/common-licenses/." "$dir/usr/share/common-licenses/"
  cp "$bf/usr/share/doc/base-files/copyright" "$dir/usr/share/doc/base-files/"

  # The CA bundle, as update-ca-certificates (a maintainer script) would write it.
  find "$dir/usr/share/ca-certificates" -name '*.crt' | sort | while read -r c; do
    cat "$c"; [ -z "$(tail -c1 "$c")" ] || echo
  done >"$dir/etc/ssl/certs/ca-certificates.crt"

  # Prune to what runs: documentation but the copyright files, manuals, locales, init and
  # systemd files, shell scripts (there is no shell), iconv modules, OpenSSL's loadable engines.
  find "$dir/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete
  find "$dir/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$dir"/usr/share/{man,info,locale,lintian,bug,bash-completion,zsh,doc-base,initramfs-tools,ca-certificates,iptables,pkgconfig} \
    "$dir"/etc/{init.d,default,ca-certificates,ca-certificates.conf,nftables.conf,ld.so.conf.d} \
    "$dir"/usr/lib/{systemd,tmpfiles.d} "$dir"/usr/lib/"$tri"/{gconv,audit,engines-3,ossl-modules} \
    "$dir"/usr/sbin/{update-ca-certificates,iptables-apply,ip6tables-apply} "$dir"/usr/lib/ssl/misc
  # Links into what was pruned (ip6tables-apply, say) go too; an absolute target is the image's.
  local l t p
  while IFS= read -r l; do
    t=$(readlink "$l")
    case $t in /*) p=$dir$t ;; *) p=$(dirname "$l")/$t ;; esac
    [ -e "$p" ] || [ -L "$p" ] || rm -f "$l"
  done < <(find "$dir" -type l)
  local scripts
  scripts=$(find "$dir" -type f -exec sh -c 'head -c2 "$1" | grep -q "^#!" && echo "$1"' _ {} \; | sed "s|^$dir/||")
  if [ -n "$scripts" ]; then
    log "scripts left in the image (there is no shell to run them): $scripts"; exit 1
  fi

  # Root only, as the distroless images; name resolution from files then DNS.
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"$dir/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/etc/group"
  printf 'hosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n' >"$dir/etc/nsswitch.conf"
  mkdir -p "$dir/tmp" "$dir/run" "$dir/var/lib/kube-proxy" "$dir/root"
  chmod 1777 "$dir/tmp"; chmod 0700 "$dir/root"
}

app_layer() { # app_layer ARCH DIR: kube-proxy, iptables-wrapper, go-runner: the layer each release changes
  local arch=$1 dir=$2 name
  mkdir -p "$dir/usr/local/bin" "$dir/usr/sbin"
  log "go build kube-proxy, iptables-wrapper, go-runner ($arch)"
  GOARCH=$arch $GO build -ldflags "$LDFLAGS" -o "$dir/usr/local/bin/kube-proxy" ./cmd/kube-proxy
  GOARCH=$arch $GO build -ldflags "-s -w" -o "$dir/usr/sbin/iptables-wrapper" ./cmd/iptables-wrapper
  # Upstream's image has component-base's kube-log-runner as /go-runner, its entrypoint, and
  # DaemonSets in the wild run `/go-runner --log-file=... -- /usr/local/bin/kube-proxy ...`.
  # Vendored as a go.mod tool, at the Kubernetes version the rest of vendor/ is.
  GOARCH=$arch $GO build -ldflags "-s -w" -o "$dir/go-runner" k8s.io/component-base/logs/kube-log-runner
  for name in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
    ln -s iptables-wrapper "$dir/usr/sbin/$name"
  done
}

# The Debian layer's files are dated by the last commit that changed its inputs (the lock, this
# recipe), not by SOURCE_DATE_EPOCH: a release that changes only our code leaves that layer's
# digest as it was, and nodes pull only the kube-proxy layer. Uncommitted changes to them:
# SOURCE_DATE_EPOCH.
debian_epoch=$(git log -1 --format=%ct -- build/packages.lock build/image.sh)
if [ -z "$debian_epoch" ] || ! git diff --quiet HEAD -- build/packages.lock build/image.sh 2>/dev/null; then
  debian_epoch=$SOURCE_DATE_EPOCH
fi
start=$SECONDS
images=()
for arch in $ARCHS; do
  grep -q "^$arch " "$LOCK" || { log "build/packages.lock has no $arch packages: UPDATE_LOCK=1 make image"; exit 1; }
  fetch "$arch"
  log "unpacking $(grep -c "^$arch " "$LOCK") packages ($arch)"
  base_layer "$arch" "$WORK/$arch/debian"
  app_layer "$arch" "$WORK/$arch/kube-proxy"
  images+=(-image "linux/$arch=$WORK/$arch/debian@$debian_epoch,$WORK/$arch/kube-proxy")
done

$GO build -o "$WORK/oci" ./build/oci
upstream=$(sed -n 's/^const Upstream = "\(.*\)"$/\1/p' pkg/version/version.go)
rm -f "$OUT"/kube-proxy-*.tar "$OUT"/kube-proxy-*.digest
digest=$("$WORK/oci" -out "$OUT" -repo "$REPO" -tag "$TAG" -created "$SOURCE_DATE_EPOCH" \
  -entrypoint /go-runner \
  -label org.opencontainers.image.title=kube-proxy \
  -label "org.opencontainers.image.description=kube-proxy-ipvs: upstream kube-proxy $upstream's flags and config, IPVS mode maintained" \
  -label "org.opencontainers.image.version=$VERSION" \
  -label "org.opencontainers.image.source=$SOURCE" \
  -label "org.opencontainers.image.revision=$(git rev-parse HEAD)" \
  -label org.opencontainers.image.licenses=Apache-2.0 \
  -label "io.kube-proxy-ipvs.upstream-version=$upstream" \
  -label "io.kube-proxy-ipvs.packages-lock=sha256:$(sha256sum "$LOCK" | cut -d' ' -f1)" \
  "${images[@]}")
echo "$digest" >"$OUT/kube-proxy-$TAG.digest"
rm -rf "$WORK"
log "$REPO:$TAG index $digest ($((SECONDS - start))s)"
for arch in $ARCHS; do log "  $OUT/kube-proxy-$TAG-linux-$arch.tar"; done
