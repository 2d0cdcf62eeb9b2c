package ipvs

import (
	"net/netip"
	"slices"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/kubernetes/pkg/proxy"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/desired"
)

// An externalIP or LoadBalancer ingress IP that is another Service's cluster IP claims the
// same IPVS virtual server as that Service (CVE-2020-8554): any Service author could take the
// apiserver's or the cluster DNS's traffic. So the address guard refuses every cluster IP and
// every address of the service CIDRs (one that is not allocated yet would be taken the
// moment it is) as an externalIP or ingress IP.
//
// Which addresses are cluster IPs depends on every other Service, so serviceAddrs keeps an
// index both ways: the cluster IPs in use (counted by service port) and, per address, the
// service ports that name it as an externalIP or ingress IP. When an address becomes or stops
// being a cluster IP, only the ports naming it are recomputed.
type serviceAddrs struct {
	clusterIPs map[netip.Addr]int
	// cidrs are the service CIDRs in the proxier's family (ServiceCIDR objects).
	cidrs []netip.Prefix

	portClusterIP map[proxy.ServicePortName]netip.Addr
	portNamed     map[proxy.ServicePortName][]netip.Addr
	namedBy       map[netip.Addr]sets.Set[proxy.ServicePortName]
}

func newServiceAddrs() *serviceAddrs {
	return &serviceAddrs{
		clusterIPs:    map[netip.Addr]int{},
		portClusterIP: map[proxy.ServicePortName]netip.Addr{},
		portNamed:     map[proxy.ServicePortName][]netip.Addr{},
		namedBy:       map[netip.Addr]sets.Set[proxy.ServicePortName]{},
	}
}

// update records a service port's cluster IP and the addresses it names (sp nil: the port is
// gone). It adds to affected the other service ports whose guard verdicts may have changed.
func (s *serviceAddrs) update(name proxy.ServicePortName, sp proxy.ServicePort, affected sets.Set[proxy.ServicePortName]) {
	var clusterIP netip.Addr
	var named []netip.Addr
	if sp != nil {
		clusterIP, _ = desired.AddrOf(sp.ClusterIP())
		named = desired.NamedAddresses(sp)
	}

	if old, ok := s.portClusterIP[name]; !ok || old != clusterIP {
		if ok {
			if s.clusterIPs[old]--; s.clusterIPs[old] <= 0 {
				delete(s.clusterIPs, old)
				affected.Insert(s.namedBy[old].UnsortedList()...)
			}
			delete(s.portClusterIP, name)
		}
		if clusterIP.IsValid() {
			if s.clusterIPs[clusterIP]++; s.clusterIPs[clusterIP] == 1 {
				affected.Insert(s.namedBy[clusterIP].UnsortedList()...)
			}
			s.portClusterIP[name] = clusterIP
		}
	}

	if old := s.portNamed[name]; !slices.Equal(old, named) {
		for _, a := range old {
			if ports := s.namedBy[a]; ports != nil {
				ports.Delete(name)
				if ports.Len() == 0 {
					delete(s.namedBy, a)
				}
			}
		}
		for _, a := range named {
			if s.namedBy[a] == nil {
				s.namedBy[a] = sets.New[proxy.ServicePortName]()
			}
			s.namedBy[a].Insert(name)
		}
		if len(named) == 0 {
			delete(s.portNamed, name)
		} else {
			s.portNamed[name] = named
		}
	}
}

// setCIDRs records the service CIDRs; it reports whether they changed.
func (s *serviceAddrs) setCIDRs(cidrs []netip.Prefix) bool {
	slices.SortFunc(cidrs, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	cidrs = slices.Compact(cidrs)
	if slices.Equal(s.cidrs, cidrs) {
		return false
	}
	s.cidrs = cidrs
	return true
}

// fill puts the index into a NodeContext (shared read-only).
func (s *serviceAddrs) fill(ctx *desired.NodeContext) {
	ctx.ClusterIPs = s.clusterIPs
	ctx.ServiceCIDRs = s.cidrs
}

// serviceCIDRsIn parses the service CIDRs the ServiceCIDR informer gives (every family) and
// keeps those of family; values that do not parse are skipped (the apiserver validates them).
func serviceCIDRsIn(family v1.IPFamily, cidrs []string) []netip.Prefix {
	var out []netip.Prefix
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil || !desired.InFamily(family, p.Addr().Unmap()) {
			continue
		}
		out = append(out, p.Masked())
	}
	return out
}

// portsNamingOwnAddresses are the service ports that name one of this node's addresses as an
// externalIP or ingress IP: the only ones a change of the host's listeners can affect.
func (p *Proxier) portsNamingOwnAddresses(ctx *desired.NodeContext) sets.Set[proxy.ServicePortName] {
	out := sets.New[proxy.ServicePortName]()
	for a, ports := range p.svcAddrs.namedBy {
		if ctx.IsOwnAddress(a) {
			out = out.Union(ports)
		}
	}
	return out
}
