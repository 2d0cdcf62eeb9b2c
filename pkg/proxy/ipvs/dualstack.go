package ipvs

import (
	"net/netip"

	"k8s.io/kubernetes/pkg/proxy"
	"k8s.io/kubernetes/pkg/proxy/metaproxier"
)

// dualStackProxier is upstream's metaproxier over the two family proxiers, which also hands
// the cluster's addresses (ClusterAddressHandler) to both: the metaproxier has no such calls.
type dualStackProxier struct {
	proxy.Provider
	families [2]*Proxier
}

var _ ClusterAddressHandler = &dualStackProxier{}

func newDualStackProxier(first, second *Proxier) *dualStackProxier {
	return &dualStackProxier{Provider: metaproxier.NewMetaProxier(first, second), families: [2]*Proxier{first, second}}
}

func (d *dualStackProxier) OnNodeAddresses(node string, addrs []netip.Addr) {
	for _, p := range d.families {
		p.OnNodeAddresses(node, addrs)
	}
}

func (d *dualStackProxier) OnNodeDelete(node string) {
	for _, p := range d.families {
		p.OnNodeDelete(node)
	}
}

func (d *dualStackProxier) OnAPIServerEndpoints(eps []netip.AddrPort) {
	for _, p := range d.families {
		p.OnAPIServerEndpoints(eps)
	}
}
