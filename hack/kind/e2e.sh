#!/usr/bin/env bash
# Upstream's Services e2e tests against kube-proxy-ipvs in a kind cluster, for CI with Docker:
#   1. make image ARCHS=amd64 (the docker-archive in _output/images)
#   2. kind create cluster with hack/kind/cluster.yaml (kubeProxyMode: ipvs)
#   3. kind load image-archive, then the kube-proxy DaemonSet's image set to it (deploy/kubeadm's
#      change, made with kubectl set image so any IMAGE_TAG works), rollout waited for
#   4. upstream's e2e.test, focus '\[sig-network\] Services'
#   5. the cluster deleted (KEEP_CLUSTER=1 keeps it)
# Needs docker, kind, kubectl; e2e.test from Kubernetes' test tarball of the cluster's version
# (E2E_TEST; downloaded from dl.k8s.io when unset). Not run on this project's machines (no
# Docker there): docs/install.md says what is checked here instead.
# Env: KIND (kind), KUBECTL (kubectl), KIND_CLUSTER (kube-proxy-ipvs), KIND_CONFIG
#   (hack/kind/cluster.yaml; hack/kind/cluster-1.40.yaml for 1.40+ node images), KIND_NODE_IMAGE
#   (kind's default), IMAGE_TAG (the Makefile's), E2E_TEST, E2E_VERSION (v1.37.2, for the
#   download), E2E_FOCUS, E2E_SKIP, SKIP_IMAGE_BUILD=1 (use the archive already built).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
KIND=${KIND:-kind} KUBECTL=${KUBECTL:-kubectl}
CLUSTER=${KIND_CLUSTER:-kube-proxy-ipvs}
KIND_CONFIG=${KIND_CONFIG:-$ROOT/hack/kind/cluster.yaml}
IMAGE_TAG=${IMAGE_TAG:-$(sed -n 's/^VERSION ?= //p' Makefile | tr + -)} # the Makefile's
IMAGE_REPO=${IMAGE_REPO:-ghcr.io/kube-proxy-ipvs/kube-proxy}
E2E_VERSION=${E2E_VERSION:-v1.37.2}
E2E_FOCUS=${E2E_FOCUS:-'\[sig-network\] Services'}
# Serial, disruptive and flaky tests and those needing a cloud LoadBalancer do not fit kind.
E2E_SKIP=${E2E_SKIP:-'\[Serial\]|\[Disruptive\]|\[Flaky\]|\[Feature:|LoadBalancer|ESIPP'}
archive=$ROOT/_output/images/kube-proxy-$IMAGE_TAG-linux-amd64.tar

[ -n "${SKIP_IMAGE_BUILD:-}" ] || make image ARCHS=amd64
[ -f "$archive" ] || { echo "kind-e2e: $archive not found (make image ARCHS=amd64)" >&2; exit 1; }

create=(create cluster --name "$CLUSTER" --config "$KIND_CONFIG" --wait 5m)
[ -z "${KIND_NODE_IMAGE:-}" ] || create+=(--image "$KIND_NODE_IMAGE")
"$KIND" "${create[@]}"
[ -n "${KEEP_CLUSTER:-}" ] || trap '"$KIND" delete cluster --name "$CLUSTER"' EXIT
kubeconfig=$(mktemp); "$KIND" get kubeconfig --name "$CLUSTER" > "$kubeconfig"
k() { "$KUBECTL" --kubeconfig "$kubeconfig" "$@"; }

"$KIND" load image-archive "$archive" --name "$CLUSTER"
k -n kube-system set image daemonset/kube-proxy "kube-proxy=$IMAGE_REPO:$IMAGE_TAG"
k -n kube-system rollout status daemonset/kube-proxy --timeout=5m
# Every node's kube-proxy runs our image and says so.
k -n kube-system get pods -l k8s-app=kube-proxy -o jsonpath='{range .items[*]}{.spec.nodeName}{" "}{.status.containerStatuses[0].image}{"\n"}{end}'
for pod in $(k -n kube-system get pods -l k8s-app=kube-proxy -o name); do
  k -n kube-system logs "$pod" | grep -q 'kube-proxy-ipvs' || { echo "kind-e2e: $pod's log does not name kube-proxy-ipvs" >&2; exit 1; }
done

e2e_test=${E2E_TEST:-}
if [ -z "$e2e_test" ]; then
  dir=$(mktemp -d)
  curl -fsSL "https://dl.k8s.io/$E2E_VERSION/kubernetes-test-linux-amd64.tar.gz" | tar -xz -C "$dir" kubernetes/test/bin/e2e.test
  e2e_test=$dir/kubernetes/test/bin/e2e.test
fi
nodes=$(k get nodes --no-headers | wc -l)
"$e2e_test" --kubeconfig="$kubeconfig" --provider=skeleton --num-nodes="$nodes" \
  --ginkgo.focus="$E2E_FOCUS" --ginkgo.skip="$E2E_SKIP" --ginkgo.v --report-dir="$ROOT/_output/kind-e2e"
