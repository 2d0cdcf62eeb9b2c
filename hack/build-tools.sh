#!/usr/bin/env bash
# Builds the upstream binaries the e2e lab needs into _output/tools/bin/ from the separate,
# non-vendored module hack/tools (go build -mod=mod; needs the Go module proxy on a cold cache):
#   kube-proxy      k8s.io/kubernetes/cmd/kube-proxy      v1.37.2  (reference implementation)
#   kube-apiserver  k8s.io/kubernetes/cmd/kube-apiserver  v1.37.2  (lab control plane)
#   etcd            go.etcd.io/etcd/server/v3             (version pinned in hack/tools/go.mod)
#   kustomize       sigs.k8s.io/kustomize/kustomize/v5    v5.8.1   (kubectl v1.37.2's; renders deploy/)
# Skips the build when the binaries exist and the stamp (hash of hack/tools/go.mod, go.sum, this
# script and `go version`) matches. Cold: about 9 min on 2 cores; warm: instant.
# Env: TOOLS_BIN (default _output/tools/bin), FORCE=1 to rebuild.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS_BIN=${TOOLS_BIN:-$ROOT/_output/tools/bin}
BINS=(kube-proxy kube-apiserver etcd kustomize)

stamp=$(cat "$ROOT/hack/tools/go.mod" "$ROOT/hack/tools/go.sum" "${BASH_SOURCE[0]}" <(go version) | sha256sum | cut -d' ' -f1)
up_to_date=1
for b in "${BINS[@]}"; do [ -x "$TOOLS_BIN/$b" ] || up_to_date=; done
if [ -n "$up_to_date" ] && [ -z "${FORCE:-}" ] && [ "$(cat "$TOOLS_BIN/.stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "build-tools: up to date in $TOOLS_BIN"; exit 0
fi

mkdir -p "$TOOLS_BIN"; rm -f "$TOOLS_BIN/.stamp"
cd "$ROOT/hack/tools"
export CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false" GOWORK=off
flags=(-trimpath -ldflags="-s -w")
start=$SECONDS
echo "build-tools: building ${BINS[*]} into $TOOLS_BIN (cold: about 9 min on 2 cores)"
go build "${flags[@]}" -o "$TOOLS_BIN/" k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kube-apiserver
go build "${flags[@]}" -o "$TOOLS_BIN/etcd" go.etcd.io/etcd/server/v3
go build "${flags[@]}" -o "$TOOLS_BIN/kustomize" sigs.k8s.io/kustomize/kustomize/v5
echo "$stamp" > "$TOOLS_BIN/.stamp"
echo "build-tools: done in $((SECONDS - start))s"
ls -l "$TOOLS_BIN"
