//go:build tools

// Package compat pins what hack/compat.sh builds per release: kube-apiserver (the control plane
// of the compatibility run) and, through kubeadmconfig, kubeadm's component config code.
package compat

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
