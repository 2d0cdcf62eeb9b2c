package desired

import (
	"cmp"
	"net/netip"
	"slices"
	"sort"

	v1 "k8s.io/api/core/v1"
	"k8s.io/kubernetes/pkg/proxy"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/objects"
)

// DefaultScheduler is what upstream uses when --ipvs-scheduler is empty.
const DefaultScheduler = "rr"

// DesiredServicePort is everything one service port needs in the kernel in ctx.Family: the
// virtual servers with their real servers, the addresses bound to kube-ipvs0 and the ipset
// entries. It follows upstream's per-service work in syncProxyRules decision for decision,
// including where upstream gives up on a service port half-way.
func DesiredServicePort(ctx *NodeContext, in ServicePortInput) ServicePortState {
	st, _ := ServicePort(ctx, in)
	return st
}

// NodeBlockedLoadBalancers are the load balancer VIPs of a service port that the node itself
// must not reach: those with loadBalancerSourceRanges that do not cover ctx.NodeIP. They feed
// GlobalConfig.NodeBlockedLoadBalancers (upstream's KUBE-IPVS-OUT-FILTER DROP rules).
func NodeBlockedLoadBalancers(ctx *NodeContext, in ServicePortInput) []objects.Key {
	_, blocked := ServicePort(ctx, in)
	return blocked
}

// IsExcluded reports whether --ipvs-exclude-cidrs holds a virtual server address. Upstream
// still creates virtual servers there for services that ask for them; it only never deletes
// the ones it finds there, so this is for the reconciler's cleanup, not for the desired state.
func IsExcluded(cidrs []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, c := range cidrs {
		if c.Contains(a) {
			return true
		}
	}
	return false
}

// builder accumulates one service port's state; additions are deduplicated so that the result
// is the same however often upstream would have re-added the same object in one sync.
type builder struct {
	ctx     *NodeContext
	st      ServicePortState
	vsIndex map[objects.Key]int
	seen    map[string]map[string]bool
	bound   map[netip.Addr]bool
	blocked []objects.Key
	// rs memoizes realServers by nodeLocal: a NodePort Service's virtual servers share their
	// real servers (the slices are read-only), computed once instead of once per address.
	rs     [2][]objects.RealServer
	rsDone [2]bool
}

// ServicePort is DesiredServicePort and NodeBlockedLoadBalancers in one computation, as the
// proxier needs both.
func ServicePort(ctx *NodeContext, in ServicePortInput) (ServicePortState, []objects.Key) {
	b := &builder{
		ctx:     ctx,
		st:      ServicePortState{SetEntries: map[string][]string{}},
		vsIndex: map[objects.Key]int{},
		seen:    map[string]map[string]bool{},
		bound:   map[netip.Addr]bool{},
	}
	b.build(in)
	return b.st, b.blocked
}

func (b *builder) build(in ServicePortInput) {
	sp := in.Port
	if sp == nil {
		return
	}
	protocol := sp.Protocol()
	if !supportedProtocol(protocol) {
		// Upstream's ipset entry validation refuses any other protocol and skips the port.
		return
	}
	port := sp.Port()
	if !validPort(port) {
		// The apiserver refuses such a Service; one that got past it gets nothing rather than
		// a virtual server on the port's low 16 bits.
		return
	}

	// The apiserver does not range-check EndpointSlice ports: such an endpoint gets nothing
	// (no real server, no entry) and is reported, so it cannot fail the others' writes.
	for _, ep := range in.Endpoints {
		if !validPort(ep.Port()) && ep.Port() != 0 {
			b.decide(portView(b.ctx.Family, sp), AddressDecision{Source: SourceEndpoint, Address: ep.String(), Reason: ReasonInvalidPort})
		}
	}

	// Hairpin: a local endpoint reaching its own service is masqueraded. Upstream adds these
	// for every local endpoint whatever its readiness, and before it validates the cluster IP.
	for _, ep := range in.Endpoints {
		if !ep.IsLocal() || !validPort(ep.Port()) {
			continue
		}
		ip, err := netip.ParseAddr(ep.IP())
		if err != nil || !InFamily(b.ctx.Family, ip.Unmap()) {
			continue
		}
		ip = ip.Unmap()
		b.entry(SetLoopBack, EntryIPPortIP(ip, protocol, ep.Port(), ip))
	}

	clusterIP, ok := AddrOf(sp.ClusterIP())
	if !ok || !InFamily(b.ctx.Family, clusterIP) {
		// Upstream skips the whole service port when its cluster IP entry is invalid.
		return
	}
	if r := specialAddress(clusterIP); r != "" {
		// The apiserver allocates cluster IPs from the service CIDRs; 0.0.0.0 or a loopback
		// address bound to kube-ipvs0 would take the node's own traffic.
		b.decide(portView(b.ctx.Family, sp), AddressDecision{Source: SourceClusterIP, Address: clusterIP.String(), Reason: r})
		return
	}
	b.entry(SetClusterIP, EntryIPPort(clusterIP, protocol, port))
	// The external policy never applies to the cluster IP; the internal one does.
	b.virtualServer(in, clusterIP, port, sp.InternalPolicyLocal(), true)

	externalLocal := sp.ExternalPolicyLocal()

	// The address guard (policy_guard.go) leaves out node, apiserver and protected addresses.
	for _, ip := range b.servedExternalIPs(sp) {
		if externalLocal {
			b.entry(SetExternalIPLocal, EntryIPPort(ip, protocol, port))
		} else {
			b.entry(SetExternalIP, EntryIPPort(ip, protocol, port))
		}
		// An address the node already has elsewhere must not also go on kube-ipvs0.
		b.virtualServer(in, ip, port, externalLocal, !b.ctx.IsOwnAddress(ip))
	}

	// Upstream serves the ipMode VIP ingress IPs of this family; ipMode Proxy load balancers do
	// their own proxying and get nothing from us. The binding policy (policy_lbbinding.go) and
	// the address guard decide which ones we serve.
	for _, ip := range b.servedLoadBalancerIPs(sp) {
		b.entry(SetLoadBalancer, EntryIPPort(ip, protocol, port))
		if externalLocal {
			b.entry(SetLoadBalancerLocal, EntryIPPort(ip, protocol, port))
		}
		if ranges := sp.LoadBalancerSourceRanges(); len(ranges) != 0 {
			b.entry(SetLoadBalancerFW, EntryIPPort(ip, protocol, port))
			allowFromNode := false
			for _, r := range ranges {
				cidr, ok := prefixOf(r)
				if !ok || !InFamily(b.ctx.Family, cidr.Addr()) {
					continue
				}
				b.entry(SetLoadBalancerSourceCIDR, EntryIPPortNet(ip, protocol, port, cidr))
				if b.ctx.NodeIP.IsValid() && cidr.Contains(b.ctx.NodeIP.Unmap()) {
					allowFromNode = true
				}
			}
			if allowFromNode {
				// Traffic from the node to a VIP it routes locally carries the VIP as source.
				b.entry(SetLoadBalancerSourceIP, EntryIPPortIP(ip, protocol, port, ip))
			} else {
				b.blocked = append(b.blocked, objects.Key{Address: ip, Protocol: objects.Protocol(protocol), Port: uint16(port)})
			}
		}
		b.virtualServer(in, ip, port, externalLocal, !b.ctx.IsOwnAddress(ip))
	}

	if nodePort := sp.NodePort(); validPort(nodePort) {
		nodeIPs := b.nodePortAddresses()
		if len(nodeIPs) == 0 {
			// Upstream stops here for this service port, health check node port included.
			return
		}
		var entries []string
		switch protocol {
		case v1.ProtocolSCTP:
			// bitmap:port has no protocol, so SCTP uses hash:ip,port with every node address.
			for _, ip := range nodeIPs {
				entries = append(entries, EntryIPPort(ip, protocol, nodePort))
			}
		default:
			entries = []string{EntryPort(nodePort)}
		}
		for _, e := range entries {
			b.entry(nodePortSet(protocol, false), e)
		}
		if externalLocal {
			for _, e := range entries {
				b.entry(nodePortSet(protocol, true), e)
			}
		}
		for _, ip := range nodeIPs {
			// Node addresses belong to their interfaces: never bound to kube-ipvs0.
			b.virtualServer(in, ip, nodePort, externalLocal, false)
		}
	}

	if hc := sp.HealthCheckNodePort(); validPort(hc) {
		b.entry(SetHealthCheckNodePort, EntryPort(hc))
	}
}

// nodePortAddresses are ctx.NodePortAddresses in the family, deduplicated and sorted so that
// the state does not depend on the order the proxier listed them in.
func (b *builder) nodePortAddresses() []netip.Addr {
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	for _, a := range b.ctx.NodePortAddresses {
		a = a.Unmap()
		if !InFamily(b.ctx.Family, a) || seen[a] {
			continue
		}
		seen[a] = true
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}

func nodePortSet(protocol v1.Protocol, local bool) string {
	switch {
	case protocol == v1.ProtocolTCP && local:
		return SetNodePortLocalTCP
	case protocol == v1.ProtocolTCP:
		return SetNodePortTCP
	case protocol == v1.ProtocolUDP && local:
		return SetNodePortLocalUDP
	case protocol == v1.ProtocolUDP:
		return SetNodePortUDP
	case local:
		return SetNodePortLocalSCTP
	default:
		return SetNodePortSCTP
	}
}

func validPort(p int) bool { return p > 0 && p <= 65535 }

func supportedProtocol(p v1.Protocol) bool {
	return p == v1.ProtocolTCP || p == v1.ProtocolUDP || p == v1.ProtocolSCTP
}

// entry adds an ipset entry under the set's name in ctx.Family.
func (b *builder) entry(base, e string) {
	name := SetName(b.ctx.Family, base)
	if b.seen[name] == nil {
		b.seen[name] = map[string]bool{}
	}
	if b.seen[name][e] {
		return
	}
	b.seen[name][e] = true
	b.st.SetEntries[name] = append(b.st.SetEntries[name], e)
}

// virtualServer adds a virtual server with the real servers the traffic policy selects, and
// binds its address when asked. When the same address, protocol and port comes twice (an
// external IP that is also the cluster IP), the later one's real servers win, as in upstream,
// where the later sync of the same virtual server replaces the destinations.
func (b *builder) virtualServer(in ServicePortInput, addr netip.Addr, port int, nodeLocal, bind bool) {
	vs := b.virtualServerFor(in.Port, addr, port)
	state := VirtualServerState{VirtualServer: vs, RealServers: b.realServers(in, nodeLocal)}
	if i, ok := b.vsIndex[vs.Key]; ok {
		b.st.VirtualServers[i] = state
	} else {
		b.vsIndex[vs.Key] = len(b.st.VirtualServers)
		b.st.VirtualServers = append(b.st.VirtualServers, state)
	}
	if bind && !b.bound[addr] {
		b.bound[addr] = true
		b.st.Bindings = append(b.st.Bindings, addr)
		// KUBE-IPVS-IPS holds exactly the addresses bound to kube-ipvs0.
		b.entry(SetIPVSIPs, EntryIP(addr))
	}
}

func (b *builder) virtualServerFor(sp proxy.ServicePort, addr netip.Addr, port int) objects.VirtualServer {
	scheduler := b.ctx.Scheduler
	if scheduler == "" {
		scheduler = DefaultScheduler
	}
	vs := objects.VirtualServer{
		Key:       objects.Key{Address: addr, Protocol: objects.Protocol(sp.Protocol()), Port: uint16(port)},
		Scheduler: scheduler,
	}
	if sp.SessionAffinityType() == v1.ServiceAffinityClientIP {
		vs.Flags |= objects.FlagPersistent
		vs.Timeout = uint32(sp.StickyMaxAgeSeconds())
	}
	if scheduler == "mh" {
		// Maglev hashing needs the source port in the hash to spread one client's connections.
		vs.Flags |= objects.FlagSchedSH2
	}
	return vs
}

// realServers picks endpoints as upstream's syncEndpoint does: the categorised cluster
// endpoints, or for a node-local policy the local ones, falling back to the cluster ones when
// there is no local endpoint (so pods on this node still reach the service; see
// kubernetes#97081). With internalTrafficPolicy Local on a service that is not externally
// accessible there are no cluster endpoints, so the fallback is empty.
func (b *builder) realServers(in ServicePortInput, nodeLocal bool) []objects.RealServer {
	i := 0
	if nodeLocal {
		i = 1
	}
	if !b.rsDone[i] {
		b.rs[i], b.rsDone[i] = b.pickRealServers(in, nodeLocal), true
	}
	return b.rs[i]
}

func (b *builder) pickRealServers(in ServicePortInput, nodeLocal bool) []objects.RealServer {
	clusterEps, localEps, _, _ := proxy.CategorizeEndpoints(in.Endpoints, in.Port, b.ctx.NodeName, b.ctx.TopologyLabels)
	eps := clusterEps
	if nodeLocal && len(localEps) > 0 {
		eps = localEps
	}
	out := make([]objects.RealServer, 0, len(eps))
	for _, ep := range eps {
		ip, err := netip.ParseAddr(ep.IP())
		if err != nil || !validPort(ep.Port()) {
			continue
		}
		ip = ip.Unmap()
		if !InFamily(b.ctx.Family, ip) {
			continue
		}
		// Upstream gives every destination weight 1; weight 0 only marks graceful deletion.
		out = append(out, objects.RealServer{Address: ip, Port: uint16(ep.Port()), Weight: 1})
	}
	// Sorted, then duplicates dropped (two endpoints of one address and port, from two slices).
	slices.SortFunc(out, func(x, y objects.RealServer) int {
		return cmp.Or(x.Address.Compare(y.Address), cmp.Compare(x.Port, y.Port))
	})
	return slices.Compact(out)
}
