package ipvs

import (
	"maps"
	"net/netip"
	"slices"
	"sort"
	"sync"

	v1 "k8s.io/api/core/v1"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/desired"
)

// clusterIntake takes what the Node, apiserver-endpoint, ServiceCIDR and topology handlers
// deliver without waiting for a sync. A sync holds Proxier.mu across its kernel I/O, which
// a cold start on a large node makes long; a handler that waited on it would hold back every later
// notification of its informer for as long, and the address guard would learn of a new node
// address a sync late. Each sync takes what arrived before it started (take).
type clusterIntake struct {
	family   v1.IPFamily
	nodeName string

	mu sync.Mutex
	// nodes are every Node's addresses in family, apiserver the apiserver's endpoints in
	// family; view is derived from them, rebuilt when they change.
	nodes     map[string][]netip.Addr
	apiserver []netip.AddrPort
	view      *clusterAddrView
	// The pending values: a new view, service CIDRs or topology labels not taken yet.
	viewPending     bool
	cidrs           []netip.Prefix
	cidrsPending    bool
	topology        map[string]string
	topologyPending bool
}

// clusterAddrView is what the address guard and the event reporter read of the cluster's
// addresses. It is never modified once built: a sync keeps using the one it took while
// handlers build the next.
type clusterAddrView struct {
	// ownAddrs are this node's addresses as its Node object lists them; otherNodes maps each
	// address of another Node to that Node's name (the first by name when two list it).
	ownAddrs   map[netip.Addr]bool
	otherNodes map[netip.Addr]string
	// apiEndpoints and apiAddrs are the apiserver's endpoints and their addresses.
	apiEndpoints map[netip.AddrPort]bool
	apiAddrs     map[netip.Addr]bool
	// nodeNames are the Nodes with an address in family, sorted.
	nodeNames []string
}

func newClusterIntake(family v1.IPFamily, nodeName string) *clusterIntake {
	return &clusterIntake{family: family, nodeName: nodeName, nodes: map[string][]netip.Addr{}, view: buildAddrView(nodeName, nil, nil)}
}

// setNode records a Node's addresses (none: the Node is gone); it reports whether they
// changed.
func (in *clusterIntake) setNode(node string, addrs []netip.Addr) bool {
	var mine []netip.Addr
	for _, a := range addrs {
		if a = a.Unmap(); desired.InFamily(in.family, a) && !slices.Contains(mine, a) {
			mine = append(mine, a)
		}
	}
	slices.SortFunc(mine, netip.Addr.Compare)
	in.mu.Lock()
	defer in.mu.Unlock()
	old, had := in.nodes[node]
	if (had && slices.Equal(old, mine)) || (!had && len(mine) == 0) {
		return false
	}
	if len(mine) == 0 {
		delete(in.nodes, node)
	} else {
		in.nodes[node] = mine
	}
	in.view, in.viewPending = buildAddrView(in.nodeName, in.nodes, in.apiserver), true
	return true
}

// setAPIServer records the apiserver's endpoints; it reports whether they changed.
func (in *clusterIntake) setAPIServer(eps []netip.AddrPort) bool {
	var mine []netip.AddrPort
	for _, ep := range eps {
		ep = netip.AddrPortFrom(ep.Addr().Unmap(), ep.Port())
		if desired.InFamily(in.family, ep.Addr()) && !slices.Contains(mine, ep) {
			mine = append(mine, ep)
		}
	}
	slices.SortFunc(mine, netip.AddrPort.Compare)
	in.mu.Lock()
	defer in.mu.Unlock()
	if slices.Equal(in.apiserver, mine) {
		return false
	}
	in.apiserver = mine
	in.view, in.viewPending = buildAddrView(in.nodeName, in.nodes, in.apiserver), true
	return true
}

// setServiceCIDRs records the service CIDRs of family; the sync decides whether they changed.
func (in *clusterIntake) setServiceCIDRs(cidrs []netip.Prefix) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.cidrs, in.cidrsPending = cidrs, true
}

// setTopology records this node's topology labels.
func (in *clusterIntake) setTopology(labels map[string]string) {
	labels = maps.Clone(labels)
	in.mu.Lock()
	defer in.mu.Unlock()
	in.topology, in.topologyPending = labels, true
}

// intakeChanges is what a sync takes: each part is set only if it arrived since the last take.
type intakeChanges struct {
	view     *clusterAddrView
	cidrs    []netip.Prefix
	cidrsSet bool
	topology map[string]string
	topoSet  bool
}

// take returns what arrived since the last take.
func (in *clusterIntake) take() intakeChanges {
	in.mu.Lock()
	defer in.mu.Unlock()
	var c intakeChanges
	if in.viewPending {
		c.view, in.viewPending = in.view, false
	}
	if in.cidrsPending {
		c.cidrs, c.cidrsSet, in.cidrsPending = in.cidrs, true, false
	}
	if in.topologyPending {
		c.topology, c.topoSet, in.topologyPending = in.topology, true, false
	}
	return c
}

// buildAddrView derives the view of nodes' addresses and the apiserver's endpoints for the
// proxier of nodeName.
func buildAddrView(nodeName string, nodes map[string][]netip.Addr, apiserver []netip.AddrPort) *clusterAddrView {
	v := &clusterAddrView{
		ownAddrs:     map[netip.Addr]bool{},
		otherNodes:   map[netip.Addr]string{},
		apiEndpoints: map[netip.AddrPort]bool{},
		apiAddrs:     map[netip.Addr]bool{},
	}
	for _, a := range nodes[nodeName] {
		v.ownAddrs[a] = true
	}
	for n := range nodes {
		v.nodeNames = append(v.nodeNames, n)
	}
	sort.Strings(v.nodeNames) // an address two Nodes list is reported with the same name every time
	for _, n := range v.nodeNames {
		if n == nodeName {
			continue
		}
		for _, a := range nodes[n] {
			if _, ok := v.otherNodes[a]; !ok {
				v.otherNodes[a] = n
			}
		}
	}
	for _, ep := range apiserver {
		v.apiEndpoints[ep] = true
		v.apiAddrs[ep.Addr()] = true
	}
	return v
}

// ClusterAddressHandler receives the cluster's addresses the address guard protects: every
// Node's status.addresses and the apiserver's endpoints. The command feeds it from informers;
// the Proxier and the dual-stack proxier implement it.
type ClusterAddressHandler interface {
	// OnNodeAddresses sets a Node's addresses (every family).
	OnNodeAddresses(node string, addrs []netip.Addr)
	// OnNodeDelete forgets a Node.
	OnNodeDelete(node string)
	// OnAPIServerEndpoints sets the endpoints of Service default/kubernetes (every family).
	OnAPIServerEndpoints(eps []netip.AddrPort)
}

var _ ClusterAddressHandler = &Proxier{}

// OnNodeAddresses is part of ClusterAddressHandler. It does not wait for a running sync
// (intake.go); the next sync recomputes every service port.
func (p *Proxier) OnNodeAddresses(node string, addrs []netip.Addr) {
	if p.intake.setNode(node, addrs) && p.initialized.Load() {
		p.Sync()
	}
}

// OnNodeDelete is part of ClusterAddressHandler.
func (p *Proxier) OnNodeDelete(node string) { p.OnNodeAddresses(node, nil) }

// OnAPIServerEndpoints is part of ClusterAddressHandler.
func (p *Proxier) OnAPIServerEndpoints(eps []netip.AddrPort) {
	if p.intake.setAPIServer(eps) && p.initialized.Load() {
		p.Sync()
	}
}

// takeIntake applies what the cluster-input handlers delivered since the last sync; a change
// to the cluster's addresses, the service CIDRs or the topology labels can change any service
// port, so every one is recomputed then (no kernel I/O where the outcome is the same).
func (p *Proxier) takeIntake() {
	c := p.intake.take()
	if c.view != nil {
		p.policy.addrs = c.view
		p.allPortsDirty = true
	}
	if c.cidrsSet && p.svcAddrs.setCIDRs(c.cidrs) {
		p.allPortsDirty = true
	}
	if c.topoSet {
		p.topologyLabels = c.topology
		p.allPortsDirty = true
	}
}
