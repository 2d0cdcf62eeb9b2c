package app

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	utilsysctl "k8s.io/component-helpers/node/util/sysctl"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/proxy"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	upstreamiptables "k8s.io/kubernetes/pkg/proxy/iptables"
	"k8s.io/kubernetes/pkg/proxy/nftables"
	proxyutil "k8s.io/kubernetes/pkg/proxy/util"
	utiliptables "k8s.io/kubernetes/pkg/util/iptables"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/netdev"
	forkiptables "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/iptables"
)

// createProxier builds the proxier of the configured mode. iptables and nftables are upstream's
// own proxiers, built from the vendored packages, so one image serves every mode and a cluster
// can migrate by editing its ConfigMap; ipvs is this project's proxier.
func (s *ProxyServer) createProxier(ctx context.Context, dualStack, initOnly bool) (proxy.Provider, error) {
	logger := klog.FromContext(ctx)
	cfg := s.Config
	detectors := localDetectors(logger, s.PrimaryIPFamily, cfg, s.podCIDRs)

	var p proxy.Provider
	var err error
	switch cfg.Mode {
	case kubeproxyconfig.ProxyModeIPTables:
		if defaultedMode {
			msg := "No kube-proxy mode specified: defaulting to 'iptables'. Note that in Kubernetes 1.40 the default mode will switch to 'nftables'. If you wish to continue using 'iptables' mode, you must explicitly specify 'mode: iptables' in the kube-proxy config file, or '--proxy-mode iptables' on the kube-proxy command line."
			logger.Error(nil, msg)
			s.Recorder.Eventf(s.NodeRef, nil, v1.EventTypeWarning, "KubeProxyDefaultMode", "StartKubeProxy", msg)
		}
		logger.Info("Using iptables Proxier")
		// Upstream's proxier, made to follow --masquerade-random-fully (pkg/proxy/iptables).
		ipts := forkiptables.WrapAll(utiliptables.NewBestEffort(), s.Fork.MasqueradeRandomFully, netdev.NewNetlink().VXLANPorts, cfg.SyncPeriod.Duration)
		if dualStack {
			p, err = upstreamiptables.NewDualStackProxier(ctx, cfg, ipts, utilsysctl.New(), detectors, s.NodeName, s.NodeIPs, s.Recorder, s.HealthzServer, initOnly)
		} else {
			family := s.PrimaryIPFamily
			p, err = upstreamiptables.NewProxier(ctx, cfg, family, ipts[family], utilsysctl.New(), detectors[family], s.NodeName, s.NodeIPs[family], s.Recorder, s.HealthzServer, initOnly)
		}
	case kubeproxyconfig.ProxyModeNFTables:
		logger.Info("Using nftables Proxier")
		if dualStack {
			p, err = nftables.NewDualStackProxier(ctx, cfg, detectors, s.NodeName, s.NodeIPs, s.Recorder, s.HealthzServer, initOnly)
		} else {
			family := s.PrimaryIPFamily
			p, err = nftables.NewProxier(ctx, cfg, family, detectors[family], s.NodeName, s.NodeIPs[family], s.Recorder, s.HealthzServer, initOnly)
		}
	case kubeproxyconfig.ProxyModeIPVS:
		logger.Info("Using ipvs Proxier (kube-proxy-ipvs)")
		p, err = s.createIPVSProxier(ctx, dualStack, detectors, initOnly)
	default:
		return nil, fmt.Errorf("unknown proxy mode %q", cfg.Mode)
	}
	if err != nil {
		return nil, fmt.Errorf("unable to create proxier: %w", err)
	}
	return p, nil
}

// localDetectors builds the per-family detector of traffic from local pods.
func localDetectors(logger klog.Logger, primary v1.IPFamily, cfg *kubeproxyconfig.KubeProxyConfiguration, podCIDRs []string) map[v1.IPFamily]proxyutil.LocalTrafficDetector {
	detectors := map[v1.IPFamily]proxyutil.LocalTrafficDetector{
		v1.IPv4Protocol: proxyutil.NewNoOpLocalDetector(),
		v1.IPv6Protocol: proxyutil.NewNoOpLocalDetector(),
	}
	byCIDR := func(cidrs []string, what string) {
		for family, nets := range proxyutil.MapCIDRsByIPFamily(cidrs) {
			detectors[family] = proxyutil.NewDetectLocalByCIDR(nets[0].String())
		}
		if !detectors[primary].IsImplemented() {
			logger.Info("Detect-local-mode set to "+what+", but no CIDR for the primary IP family", "ipFamily", primary, "cidrs", cidrs)
		}
	}
	switch cfg.DetectLocalMode {
	case kubeproxyconfig.LocalModeClusterCIDR:
		byCIDR(cfg.DetectLocal.ClusterCIDRs, "ClusterCIDR")
	case kubeproxyconfig.LocalModeNodeCIDR:
		byCIDR(podCIDRs, "NodeCIDR")
	case kubeproxyconfig.LocalModeBridgeInterface:
		d := proxyutil.NewDetectLocalByBridgeInterface(cfg.DetectLocal.BridgeInterface)
		detectors[v1.IPv4Protocol], detectors[v1.IPv6Protocol] = d, d
	case kubeproxyconfig.LocalModeInterfaceNamePrefix:
		d := proxyutil.NewDetectLocalByInterfaceNamePrefix(cfg.DetectLocal.InterfaceNamePrefix)
		detectors[v1.IPv4Protocol], detectors[v1.IPv6Protocol] = d, d
	default:
		logger.Info("Defaulting to no-op detect-local")
	}
	return detectors
}
