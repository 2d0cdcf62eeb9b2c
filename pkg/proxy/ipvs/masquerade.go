package ipvs

import (
	"slices"

	"k8s.io/klog/v2"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/forkconfig"
	forkiptables "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/iptables"
)

// refreshVXLANPorts reads the node's VXLAN ports, in auto --masquerade-random-fully mode
// only, during the periodic verification: a VXLAN link created after kube-proxy (flannel
// starting later) is picked up within syncPeriod. When the ports changed it marks the iptables
// rules stale so that the sync recomputes them; the reconciler then restores iptables, and only
// iptables, because the text differs. A failed read keeps the ports read before.
func (p *Proxier) refreshVXLANPorts(logger klog.Logger) {
	if p.fork.MasqueradeRandomFully != forkconfig.RandomFullyAuto {
		return
	}
	ports, err := p.netdev.VXLANPorts()
	if err != nil {
		logger.Error(err, "Reading the node's VXLAN links failed; keeping the VXLAN ports read before", "ports", p.vxlanPorts)
		return
	}
	ports = forkiptables.SortedPorts(ports)
	if slices.Equal(ports, p.vxlanPorts) {
		return
	}
	logger.Info("VXLAN ports changed: masquerading them without --random-fully", "previous", p.vxlanPorts, "current", ports)
	p.vxlanPorts = ports
	p.rulesStale = true
}
