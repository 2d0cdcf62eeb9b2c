package ipvs

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/version"
	utilsysctl "k8s.io/component-helpers/node/util/sysctl"
	"k8s.io/klog/v2"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	proxyutil "k8s.io/kubernetes/pkg/proxy/util"
	utilkernel "k8s.io/kubernetes/pkg/util/kernel"

	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
)

// The sysctls the IPVS data path needs, with upstream's values.
const (
	sysctlVSConnTrack             = "net/ipv4/vs/conntrack"                 // iptables sees IPVS-handled packets (masquerade, filters)
	sysctlConnReuse               = "net/ipv4/vs/conn_reuse_mode"           // 0 on kernels where 1 added a 1s stall on port reuse
	sysctlExpireNoDestConn        = "net/ipv4/vs/expire_nodest_conn"        // drop flows of a deleted real server at their next packet
	sysctlExpireQuiescentTemplate = "net/ipv4/vs/expire_quiescent_template" // affinity templates of weight-0 real servers expire
	sysctlForward                 = "net/ipv4/ip_forward"
	sysctlArpIgnore               = "net/ipv4/conf/all/arp_ignore"   // strictARP: do not answer ARP for kube-ipvs0's VIPs
	sysctlArpAnnounce             = "net/ipv4/conf/all/arp_announce" // strictARP: nor use them as ARP source
)

// setupKernel sets the sysctls and IPVS timeouts the proxier needs, as upstream does when it
// creates its proxier. kernelVersion is utilkernel.GetVersion outside tests.
func setupKernel(logger klog.Logger, cfg *kubeproxyconfig.KubeProxyConfiguration, sysctl utilsysctl.Interface, ipvs kipvs.Interface, kernelVersion func() (*version.Version, error)) error {
	if err := proxyutil.EnsureSysctl(sysctl, sysctlVSConnTrack, 1); err != nil {
		return err
	}
	kv, err := kernelVersion()
	if err != nil {
		return fmt.Errorf("failed to get kernel version: %w", err)
	}
	switch {
	case kv.LessThan(version.MustParseGeneric(utilkernel.IPVSConnReuseModeMinSupportedKernelVersion)):
		logger.Error(nil, "Can't set sysctl, kernel version doesn't satisfy minimum version requirements", "sysctl", sysctlConnReuse, "minimumKernelVersion", utilkernel.IPVSConnReuseModeMinSupportedKernelVersion)
	case kv.AtLeast(version.MustParseGeneric(utilkernel.IPVSConnReuseModeFixedKernelVersion)):
		// Fixed in the kernel: the default is right (kubernetes#93297).
		logger.V(2).Info("Left as-is", "sysctl", sysctlConnReuse)
	default:
		if err := proxyutil.EnsureSysctl(sysctl, sysctlConnReuse, 0); err != nil {
			return err
		}
	}
	for _, s := range []string{sysctlExpireNoDestConn, sysctlExpireQuiescentTemplate, sysctlForward} {
		if err := proxyutil.EnsureSysctl(sysctl, s, 1); err != nil {
			return err
		}
	}
	if cfg.IPVS.StrictARP {
		if err := proxyutil.EnsureSysctl(sysctl, sysctlArpIgnore, 1); err != nil {
			return err
		}
		if err := proxyutil.EnsureSysctl(sysctl, sysctlArpAnnounce, 2); err != nil {
			return err
		}
	}
	tcp, fin, udp := cfg.IPVS.TCPTimeout.Duration, cfg.IPVS.TCPFinTimeout.Duration, cfg.IPVS.UDPTimeout.Duration
	if tcp > 0 || fin > 0 || udp > 0 {
		if err := ipvs.SetTimeouts(tcp, fin, udp); err != nil {
			logger.Error(err, "Failed to set IPVS timeouts")
		}
	}
	return nil
}
