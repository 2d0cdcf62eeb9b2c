#!/usr/bin/env bash
# Installs what the build, the tests and the QEMU IPVS lab need. Idempotent and non-interactive
# (CI runs it on a fresh machine); takes a few seconds when everything is already there.
#   apt: qemu-system-x86 busybox-static kmod (lab runner: boots Debian's kernel, see hack/lab/)
#        ipvsadm iptables ipset conntrack iproute2 tcpdump curl procps strace (used inside the guest)
#        openssl (control-plane certificates)
#        debian-archive-keyring jq binutils skopeo containerd (make image: apt indexes'
#        signatures; make image-test: reading the image's JSON, readelf to check the binaries are
#        static, skopeo to read the image with another tool, containerd (with runc) to import it
#        as kind does and run it: a private instance the test starts and stops)
#        runc (the lab's TestImage runs the image as a node's kube-proxy with it, in the guest)
#   go:  staticcheck (pinned)
# apt-get update runs only when a package is missing (or APT_UPDATE=1); the lab runner runs it too
# when the kernel package cannot be downloaded.
# Env: SKIP_GO_TOOLS=1 to skip the Go tools. GOBIN decides where Go tools go (default $(go env GOPATH)/bin).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

STATICCHECK_VERSION=${STATICCHECK_VERSION:-v0.8.2}   # staticcheck 2026.2.2: supports Go 1.26
APT_PKGS=(qemu-system-x86 busybox-static kmod ipvsadm iptables ipset conntrack iproute2 tcpdump
          curl procps openssl ca-certificates strace debian-archive-keyring jq binutils skopeo containerd runc)

SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
# dpkg-query exits non-zero when a package is unknown to dpkg: that is the case being tested.
installed=$( (dpkg-query -W -f='${Package} ${Status}\n' "${APT_PKGS[@]}" 2>/dev/null || true) | awk '/ install ok installed$/{print $1}')
missing=()
for p in "${APT_PKGS[@]}"; do grep -qx "$p" <<<"$installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ] || [ -n "${APT_UPDATE:-}" ]; then
  echo "install-deps: apt-get install ${missing[*]:-(update only)}"
  $SUDO apt-get update -qq
  [ ${#missing[@]} -eq 0 ] || $SUDO apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null
fi

if [ -z "${SKIP_GO_TOOLS:-}" ]; then
  gobin=$(go env GOBIN); gobin=${gobin:-$(go env GOPATH)/bin}
  have=$("$gobin/staticcheck" -version 2>/dev/null || true)
  # staticcheck -version prints e.g. "staticcheck 2026.2.2 (0.8.2)"
  if [[ "$have" != *"(${STATICCHECK_VERSION#v})"* ]]; then
    echo "install-deps: go install staticcheck@$STATICCHECK_VERSION"
    (cd / && GOFLAGS= GOWORK=off go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION")
  fi
fi
echo "install-deps: ok"
