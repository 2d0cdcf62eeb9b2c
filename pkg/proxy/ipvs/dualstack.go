package ipvs

import (
	"net/netip"
	"sync"

	"k8s.io/kubernetes/pkg/proxy"
	"k8s.io/kubernetes/pkg/proxy/metaproxier"
)

// dualStackProxier is upstream's metaproxier over the two family proxiers, which also hands
// the cluster's addresses (ClusterAddressHandler) to both: the metaproxier has no such calls,
// and runs the two families' first syncs side by side (see OnEndpointSlicesSynced).
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

// OnServiceSynced and OnEndpointSlicesSynced run the families' handlers side by side. The first
// sync runs inside whichever of the two comes last, and the metaproxier calls the families one
// after the other: the second family's Services waited for the whole of the first family's
// first sync, which is long on a large node (docs/performance.md). The families share no state
// but the kernel adapters, which their periodic syncs already use concurrently.
func (d *dualStackProxier) OnServiceSynced() { d.both((*Proxier).OnServiceSynced) }

func (d *dualStackProxier) OnEndpointSlicesSynced() { d.both((*Proxier).OnEndpointSlicesSynced) }

func (d *dualStackProxier) both(f func(*Proxier)) {
	var wg sync.WaitGroup
	for _, p := range d.families {
		wg.Go(func() { f(p) })
	}
	wg.Wait()
}
