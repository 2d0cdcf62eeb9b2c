//go:build tools

// Package tools pins the upstream binaries the e2e lab runs (built by hack/build-tools.sh with
// -mod=mod; this module is NOT vendored): upstream kube-proxy and kube-apiserver v1.37.2 as the
// reference implementation / control plane, etcd (same version as Kubernetes v1.37.2 requires),
// and kustomize (the release kubectl v1.37.2 embeds) to render deploy/ in the e2e test. Its tests
// (kubeadm_upgrade_test.go, kind_config_test.go) check deploy/ and hack/kind/ with kubeadm's and
// kind's own Go packages, which the product's vendor/ should not carry.
// The imports only make `go mod tidy` record them; main packages are built with `go build -o`.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "sigs.k8s.io/kustomize/kustomize/v5"
)
