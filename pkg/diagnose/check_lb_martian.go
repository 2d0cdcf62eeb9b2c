package diagnose

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Check 2: LoadBalancer ingress IPs of externalTrafficPolicy: Local Services bound to
// kube-ipvs0: a health check or client packet from the load balancer with that VIP as source
// arrives with a local source address and the kernel drops it as martian.
var lbIngressMartianCheck = check{
	ID:      IDLBIngressMartian,
	Title:   "LoadBalancer ingress IP of an externalTrafficPolicy: Local Service bound to kube-ipvs0",
	Needs:   []Source{SourceLinks},
	Partial: []Source{SourceServices, SourceIPSets, SourceSysctls, SourceKernelLog},
	Run:     runLBIngressMartian,
}

// lbLocalSet is upstream's ipset of the LB ingress IP:ports of eTP Local Services (ours keeps
// the name), read when the Services cannot be.
const lbLocalSet = "KUBE-LOAD-BALANCER-LOCAL"

func runLBIngressMartian(s *Snapshot) []Finding {
	bound, ok := boundAddrs(s)
	if !ok {
		return nil
	}
	// The eTP Local LB IPs, with where each was learnt.
	local := map[netip.Addr][]string{}
	if _, gone := s.Missing[SourceServices]; !gone {
		for _, sa := range serviceAddrs(s) {
			if sa.Kind == "LoadBalancer ingress" && sa.Svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
				local[sa.Addr] = append(local[sa.Addr], fmt.Sprintf("Service %s: externalTrafficPolicy Local, LoadBalancer ingress %s", svcName(sa.Svc), sa.Addr))
			}
		}
	} else {
		for _, set := range s.IPSets {
			if set.Name != lbLocalSet {
				continue
			}
			for _, e := range set.Entries {
				ip, _, _ := strings.Cut(e, ",")
				if a, err := netip.ParseAddr(ip); err == nil {
					local[a] = append(local[a], fmt.Sprintf("ipset %s: %s", lbLocalSet, e))
				}
			}
		}
	}
	var addrs []netip.Addr
	for a := range local {
		if bound[a] && a.Is4() { // IPv6 has no martian-source drop for local addresses
			addrs = append(addrs, a)
		}
	}
	sort.Slice(addrs, func(i, j int) bool { return addrs[i].Less(addrs[j]) })
	var out []Finding
	for _, a := range addrs {
		ev := append([]string{fmt.Sprintf("%s bound to %s (a local address of this node)", a, dummyLink)}, local[a]...)
		ev = append(ev, sysctlLines(s, "net/ipv4/conf/all/accept_local", "net/ipv4/conf/all/rp_filter", "net/ipv4/conf/all/log_martians")...)
		sev := Warning
		if s.Sysctls["net/ipv4/conf/all/accept_local"] == "1" {
			sev = Info // the kernel accepts local sources everywhere
		}
		for _, line := range s.KernelLog {
			if strings.Contains(line, "martian source") && strings.Contains(line, "from "+a.String()+",") {
				ev = append(ev, "kernel log: "+line)
				sev = Error
			}
		}
		if sev != Error && s.Sysctls["net/ipv4/conf/all/log_martians"] != "1" {
			ev = append(ev, "log_martians is off: drops of packets from the VIP would not be logged")
		}
		out = append(out, Finding{
			ID:       IDLBIngressMartian,
			Severity: sev,
			Title:    fmt.Sprintf("LoadBalancer ingress %s of an externalTrafficPolicy: Local Service is a local address here", a),
			Evidence: ev,
			Why: "An IP bound to kube-ipvs0 is a local address of the node, and Linux drops a packet that arrives from " +
				"outside with a local address as its source (a martian), whatever rp_filter says, unless accept_local " +
				"is set. Load balancers that health-check or forward with their VIP as source and no SNAT (Tencent CLB " +
				"did for years) then see every externalTrafficPolicy: Local node fail its health check, and some " +
				"client traffic times out (kubernetes#79783).",
			Fix: "With kube-proxy-ipvs, leave the IP unbound: annotate the Service kube-proxy-ipvs.io/bind-lb-ingress: " +
				"\"false\", or set --ipvs-bind-lb-ingress=false (ipvs.bindLoadBalancerIngress: false) for every Service; " +
				"pods then reach the IP through the load balancer (lb-ingress-unbound). With upstream, only the cloud " +
				"controller can help, by setting ipMode: Proxy on the ingress, or the load balancer by using SNAT.",
		})
	}
	return out
}
