package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	v1 "k8s.io/api/core/v1"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/klog/v2"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	proxyutil "k8s.io/kubernetes/pkg/proxy/util"
	utiliptables "k8s.io/kubernetes/pkg/util/iptables"
	netutils "k8s.io/utils/net"
)

// detectNodeIPs picks the node's primary family and one IP per family: the Node object's
// addresses, overridden by a specific --bind-address, loopback where nothing is known.
func detectNodeIPs(logger klog.Logger, nodeIPs []net.IP, bindAddress string) (v1.IPFamily, map[v1.IPFamily]net.IP) {
	primary := v1.IPv4Protocol
	ips := map[v1.IPFamily]net.IP{
		v1.IPv4Protocol: net.IPv4(127, 0, 0, 1),
		v1.IPv6Protocol: net.IPv6loopback,
	}
	for i, ip := range nodeIPs {
		if i > 1 {
			break
		}
		family := familyOf(ip)
		if i == 0 {
			primary = family
		}
		ips[family] = ip
	}
	if bind := netutils.ParseIPSloppy(bindAddress); bind != nil && !bind.IsUnspecified() {
		primary = familyOf(bind)
		ips[primary] = bind
	}
	if ips[primary].IsLoopback() {
		logger.Info("Can't determine this node's IP, assuming loopback; if this is incorrect, please set the --bind-address flag")
	}
	return primary, ips
}

func familyOf(ip net.IP) v1.IPFamily {
	if netutils.IsIPv4(ip) {
		return v1.IPv4Protocol
	}
	return v1.IPv6Protocol
}

// expandNodePortAddresses replaces the keywords of nodePortAddresses with CIDRs.
func expandNodePortAddresses(addrs []string, nodeIPs map[v1.IPFamily]net.IP) []string {
	var out []string
	for _, a := range addrs {
		switch a {
		case kubeproxyconfig.NodePortAddressesPrimary:
			if ip := nodeIPs[v1.IPv4Protocol]; ip != nil && !ip.IsLoopback() {
				out = append(out, ip.String()+"/32")
			}
			if ip := nodeIPs[v1.IPv6Protocol]; ip != nil && !ip.IsLoopback() {
				out = append(out, ip.String()+"/128")
			}
		case kubeproxyconfig.NodePortAddressesLocalhost:
			out = append(out, "127.0.0.0/8", "::1/128")
		case kubeproxyconfig.NodePortAddressesAll:
			out = append(out, proxyutil.IPv4ZeroCIDR, proxyutil.IPv6ZeroCIDR)
		default:
			out = append(out, a)
		}
	}
	return out
}

// warnNodePortAddresses reports nodePortAddresses settings that accept NodePort traffic on more
// addresses than the operator probably meant (a warning, as upstream).
func warnNodePortAddresses(cfg *kubeproxyconfig.KubeProxyConfiguration, primary v1.IPFamily, podCIDRs []string) error {
	dualStackHint := false
	for _, cidrs := range [][]string{cfg.DetectLocal.ClusterCIDRs, cfg.NodePortAddresses, cfg.IPVS.ExcludeCIDRs, podCIDRs} {
		if dual, _ := netutils.IsDualStackCIDRStrings(cidrs); dual {
			dualStackHint = true
			break
		}
	}
	byFamily := proxyutil.MapCIDRsByIPFamily(cfg.NodePortAddresses)
	other := proxyutil.OtherIPFamily(primary)
	switch {
	case len(cfg.NodePortAddresses) == 0:
		return errors.New("nodePortAddresses is unset; NodePort connections will be accepted on all local IPs. Consider using `--nodeport-addresses primary`")
	case dualStackHint && len(byFamily[primary]) == len(cfg.NodePortAddresses):
		return fmt.Errorf("cluster appears to be dual-stack but nodePortAddresses contains only %s addresses; NodePort connections will be accepted on all local %s IPs", primary, other)
	case len(byFamily[primary]) == 0:
		return fmt.Errorf("cluster appears to be %s-primary but nodePortAddresses contains only %s addresses; NodePort connections will be accepted on all local %s IPs", primary, other, primary)
	}
	return nil
}

// checkIPFamilyConfig reports settings that name only the family the cluster does not use;
// fatal when the local-traffic detector would have nothing to work with.
func checkIPFamilyConfig(cfg *kubeproxyconfig.KubeProxyConfiguration, primary v1.IPFamily, podCIDRs []string, dualStack bool) (err error, fatal bool) {
	bad := netutils.IPv6
	if primary == v1.IPv6Protocol {
		bad = netutils.IPv4
	}
	clusterType := fmt.Sprintf("%s-only", primary)
	if dualStack {
		clusterType = fmt.Sprintf("%s-primary", primary)
	}
	var errs []error
	if onlyFamily(cfg.DetectLocal.ClusterCIDRs, bad) {
		errs = append(errs, fmt.Errorf("cluster is %s but clusterCIDRs contains only IPv%s addresses", clusterType, bad))
		if cfg.DetectLocalMode == kubeproxyconfig.LocalModeClusterCIDR && !dualStack {
			fatal = true
		}
	}
	if onlyFamily(podCIDRs, bad) {
		errs = append(errs, fmt.Errorf("cluster is %s but node.spec.podCIDRs contains only IPv%s addresses", clusterType, bad))
		if cfg.DetectLocalMode == kubeproxyconfig.LocalModeNodeCIDR {
			fatal = true
		}
	}
	if !dualStack {
		if onlyFamily(cfg.IPVS.ExcludeCIDRs, bad) {
			errs = append(errs, fmt.Errorf("cluster is %s but ipvs.excludeCIDRs contains only IPv%s addresses", clusterType, bad))
		}
		if bindAddressOfFamily(cfg.HealthzBindAddress, bad) {
			errs = append(errs, fmt.Errorf("cluster is %s but healthzBindAddress is IPv%s", clusterType, bad))
		}
		if bindAddressOfFamily(cfg.MetricsBindAddress, bad) {
			errs = append(errs, fmt.Errorf("cluster is %s but metricsBindAddress is IPv%s", clusterType, bad))
		}
	}
	return utilerrors.NewAggregate(errs), fatal
}

func onlyFamily(cidrs []string, family netutils.IPFamily) bool {
	if len(cidrs) == 0 {
		return false
	}
	for _, c := range cidrs {
		if netutils.IPFamilyOfCIDRString(c) != family {
			return false
		}
	}
	return true
}

func bindAddressOfFamily(hostPort string, family netutils.IPFamily) bool {
	host, _, _ := net.SplitHostPort(hostPort)
	ip := netutils.ParseIPSloppy(host)
	return ip != nil && !ip.IsUnspecified() && netutils.IPFamilyOf(ip) == family
}

// familiesSupported reports which IP families the kernel (and, for the iptables-based modes,
// iptables) supports.
func familiesSupported(ctx context.Context, mode kubeproxyconfig.ProxyMode) (v4, v6 bool, err error) {
	logger := klog.FromContext(ctx)
	v4, v6 = true, true
	if mode == kubeproxyconfig.ProxyModeIPTables || mode == kubeproxyconfig.ProxyModeIPVS {
		err4 := utiliptables.New(utiliptables.ProtocolIPv4).Present()
		err6 := utiliptables.New(utiliptables.ProtocolIPv6).Present()
		v4, v6 = err4 == nil, err6 == nil
		switch {
		case !v4 && !v6:
			return false, false, fmt.Errorf("iptables is not available on this host : %w", err4)
		case !v4:
			logger.Info("No iptables support for family", "ipFamily", v1.IPv4Protocol, "error", err4)
		case !v6:
			logger.Info("No iptables support for family", "ipFamily", v1.IPv6Protocol, "error", err6)
		}
	}
	if _, statErr := os.Stat("/proc/net/if_inet6"); statErr != nil {
		logger.Info("No kernel support for family", "ipFamily", v1.IPv6Protocol)
		return v4, false, nil
	}
	if b, readErr := os.ReadFile("/proc/sys/net/ipv6/conf/all/disable_ipv6"); readErr == nil && strings.TrimSpace(string(b)) == "1" {
		logger.Info("Kernel support disabled for family", "ipFamily", v1.IPv6Protocol)
		v6 = false
	}
	return v4, v6, nil
}
