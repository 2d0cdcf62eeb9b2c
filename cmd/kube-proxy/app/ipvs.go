package app

import (
	"context"

	v1 "k8s.io/api/core/v1"
	"k8s.io/kubernetes/pkg/proxy"
	proxyutil "k8s.io/kubernetes/pkg/proxy/util"

	proxyipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs"
)

// createIPVSProxier builds this project's IPVS proxier. Unlike upstream 1.37 it logs no
// deprecation warning and records no IPVSDeprecation Event: this IPVS mode is maintained.
func (s *ProxyServer) createIPVSProxier(ctx context.Context, dualStack bool, detectors map[v1.IPFamily]proxyutil.LocalTrafficDetector, initOnly bool) (proxy.Provider, error) {
	families := []v1.IPFamily{s.PrimaryIPFamily}
	if dualStack {
		families = []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol}
	}
	return proxyipvs.New(ctx, s.Config, s.Fork, families, proxyipvs.NodeInfo{
		Name:      s.NodeName,
		IPs:       s.NodeIPs,
		Detectors: detectors,
		Recorder:  s.Recorder,
		Healthz:   s.HealthzServer,
	}, initOnly)
}

// cleanupIPVS removes what the IPVS proxier owns; it returns whether anything failed.
func cleanupIPVS(ctx context.Context) bool { return proxyipvs.CleanupLeftovers(ctx) }
