package diagnose

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	discoveryv1 "k8s.io/api/discovery/v1"
)

// Check 4: an externalIP or LoadBalancer ingress IP equal to a node's address, an apiserver
// endpoint or this node's gateway. Upstream binds it to kube-ipvs0 on every node but its owner,
// which then cannot reach the owner (docs/address-guard.md).
var addressCollisionCheck = check{
	ID:      IDAddressCollision,
	Title:   "externalIP or LoadBalancer IP equal to a node's, the apiserver's or the gateway's address",
	Needs:   []Source{SourceLinks},
	Partial: []Source{SourceServices, SourceNodes, SourceEndpointSlices, SourceRoutes, SourceIPVS},
	Run:     runAddressCollision,
}

// owners maps the addresses that must never be captured to what they are.
func owners(s *Snapshot) (map[netip.Addr][]string, map[netip.Addr]bool) {
	out := map[netip.Addr][]string{}
	own := map[netip.Addr]bool{}
	add := func(a netip.Addr, what string) { out[a.Unmap()] = append(out[a.Unmap()], what) }
	for _, n := range s.Nodes {
		for _, na := range n.Status.Addresses {
			if a, err := netip.ParseAddr(na.Address); err == nil {
				add(a, fmt.Sprintf("%s of node %s", na.Type, n.Name))
				if n.Name == s.NodeName {
					own[a.Unmap()] = true
				}
			}
		}
	}
	for _, sl := range s.EndpointSlices {
		if sl.Namespace != "default" || sl.Labels[discoveryv1.LabelServiceName] != "kubernetes" {
			continue
		}
		for _, ep := range sl.Endpoints {
			for _, ip := range ep.Addresses {
				if a, err := netip.ParseAddr(ip); err == nil {
					add(a, "apiserver endpoint (EndpointSlice default/"+sl.Name+")")
				}
			}
		}
	}
	for _, gw := range s.Gateways {
		add(gw, "this node's default gateway")
	}
	for _, l := range s.Links {
		if l.Name == dummyLink || l.Name == "lo" {
			continue
		}
		for _, a := range l.Addrs {
			add(a, "this node's address on "+l.Name)
			own[a.Unmap()] = true
		}
	}
	return out, own
}

func runAddressCollision(s *Snapshot) []Finding {
	owned, own := owners(s)
	bound, _ := boundAddrs(s)
	vss := ipvsAddrs(s)
	type cand struct {
		addr netip.Addr
		what string
	}
	var cands []cand
	if _, gone := s.Missing[SourceServices]; !gone {
		for _, sa := range serviceAddrs(s) {
			cands = append(cands, cand{sa.Addr, fmt.Sprintf("Service %s: %s %s", svcName(sa.Svc), sa.Kind, sa.Addr)})
		}
	} else {
		for a := range bound {
			cands = append(cands, cand{a, fmt.Sprintf("%s bound to %s (Services not read: owner unknown)", a, dummyLink)})
		}
	}
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].addr != cands[j].addr {
			return cands[i].addr.Less(cands[j].addr)
		}
		return cands[i].what < cands[j].what
	})
	var out []Finding
	for _, c := range cands {
		whose, hit := owned[c.addr]
		if !hit {
			continue
		}
		ev := []string{c.what, fmt.Sprintf("%s is the %s", c.addr, strings.Join(whose, ", the "))}
		sev := Info
		state := "not bound to " + dummyLink + " and no IPVS virtual server on this node"
		if bound[c.addr] {
			sev, state = Error, "bound to "+dummyLink+" on this node: this node sends its own traffic for it to itself"
		} else if keys := vss[c.addr]; len(keys) > 0 {
			state = "IPVS virtual servers on this node capture " + strings.Join(keys, ", ")
			if !own[c.addr] {
				sev = Warning
			}
		}
		ev = append(ev, state)
		out = append(out, Finding{
			ID:       IDAddressCollision,
			Severity: sev,
			Title:    fmt.Sprintf("%s of a Service is the %s", c.addr, whose[0]),
			Evidence: ev,
			Why: "Upstream kube-proxy binds an externalIP or LoadBalancer ingress IP to kube-ipvs0 on every node except " +
				"the one that has it, which makes it a local address there: those nodes can no longer reach the node, " +
				"the apiserver or the gateway that owns it, and a control-plane address takes kubelets and kube-proxies " +
				"down with it (kubernetes#66966, #93175, #104679, #127410). Anyone who may create Services can do this. " +
				"Info: this node is not affected now, nodes running upstream kube-proxy are.",
			Fix: "Remove the address from the Service. kube-proxy-ipvs refuses to bind or capture a node's, the " +
				"apiserver's or another Service's address (an Event AddressRefused names it); add gateways and other " +
				"addresses to --ipvs-protected-cidrs (ipvs.protectedCIDRs) and restrict externalIPs with " +
				"--ipvs-external-ip-cidrs (docs/address-guard.md).",
		})
	}
	return out
}
