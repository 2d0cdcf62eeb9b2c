package ipvs

import (
	"context"
	"fmt"
	"net"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"
	utilsysctl "k8s.io/component-helpers/node/util/sysctl"
	"k8s.io/kubernetes/pkg/proxy"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	"k8s.io/kubernetes/pkg/proxy/conntrack"
	"k8s.io/kubernetes/pkg/proxy/healthcheck"
	proxyutil "k8s.io/kubernetes/pkg/proxy/util"
	utiliptables "k8s.io/kubernetes/pkg/util/iptables"
	utilexec "k8s.io/utils/exec"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/forkconfig"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipset"
	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/netdev"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/nftgeneration"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/sockdiag"
)

// NodeInfo is what the command knows about the node the proxier runs on.
type NodeInfo struct {
	Name      string
	IPs       map[v1.IPFamily]net.IP
	Detectors map[v1.IPFamily]proxyutil.LocalTrafficDetector
	Recorder  events.EventRecorder
	Healthz   *healthcheck.ProxyHealthServer
}

// New builds the IPVS proxier on the real kernel for the given families (one, or both for
// dual-stack). It fails clearly when the kernel cannot run it: no ip_vs, no ipset, or a
// scheduler that cannot be loaded.
func New(ctx context.Context, cfg *kubeproxyconfig.KubeProxyConfiguration, fork forkconfig.Config, families []v1.IPFamily, node NodeInfo, initOnly bool) (proxy.Provider, error) {
	ipvsKernel, err := kipvs.NewNetlink()
	if err != nil {
		return nil, fmt.Errorf("can't use the IPVS proxier: %w", err)
	}
	execer := utilexec.New()
	if err := CheckSupport(ipvsKernel, func() error { return ipset.CheckVersion(execer) }, cfg.IPVS.Scheduler); err != nil {
		return nil, fmt.Errorf("can't use the IPVS proxier: %w", err)
	}
	RegisterMetrics()
	ipts := utiliptables.NewBestEffort()
	k := Kernel{IPVS: ipvsKernel, Netdev: netdev.NewNetlink(), IPSet: ipset.NewKernel(execer), Conntrack: conntrack.New(), RulesetGen: nftgeneration.Netlink{}, Listeners: sockdiag.Netlink{}}

	var proxiers []proxy.Provider
	for _, family := range families {
		k.IPTables = ipts[family]
		p, err := NewProxier(ctx, Config{
			Family:        family,
			NodeName:      node.Name,
			NodeIP:        node.IPs[family],
			Proxy:         cfg,
			Fork:          fork,
			LocalDetector: node.Detectors[family],
			Recorder:      node.Recorder,
			HealthzServer: node.Healthz,
		}, k, utilsysctl.New(), initOnly)
		if err != nil {
			return nil, fmt.Errorf("unable to create %s proxier: %w", family, err)
		}
		if initOnly {
			continue
		}
		proxiers = append(proxiers, p)
	}
	switch {
	case initOnly:
		return nil, nil
	case len(proxiers) == 2:
		return newDualStackProxier(proxiers[0].(*Proxier), proxiers[1].(*Proxier)), nil
	default:
		return proxiers[0], nil
	}
}
