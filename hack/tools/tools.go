//go:build tools

// Package tools pins the upstream binaries the e2e lab runs (built by hack/build-tools.sh with
// -mod=mod; this module is NOT vendored): upstream kube-proxy and kube-apiserver v1.37.2 as the
// reference implementation / control plane, and etcd (same version as Kubernetes v1.37.2 requires).
// The imports only make `go mod tidy` record them; main packages are built with `go build -o`.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
)
