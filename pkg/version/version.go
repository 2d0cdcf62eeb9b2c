// Package version holds the fork's version and the upstream Kubernetes release it tracks.
package version

// Fork is this build's version, set at link time by the Makefile
// (-X github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/version.Fork=...). Its form is the upstream
// version with an -ipvs.N suffix, so operators and tools comparing versions see the upstream base.
var Fork = "v1.37.2-ipvs.0-dev"

// Upstream is the Kubernetes release whose kube-proxy behaviour, flags and config this build tracks.
const Upstream = "v1.37.2"
