package diagnose

import (
	"fmt"
	"sort"
)

// Check 5: LoadBalancer ingress IPs (ipMode VIP) not bound on a node that runs IPVS: pods and
// the node reach them through the load balancer. A choice (lb-ingress-martian is the other
// side of it), so only info.
var lbIngressUnboundCheck = check{
	ID:    IDLBIngressUnbound,
	Title: "LoadBalancer ingress IP not bound: pods reach it through the load balancer",
	Needs: []Source{SourceLinks, SourceServices},
	Run:   runLBIngressUnbound,
}

const bindAnnotation = "kube-proxy-ipvs.io/bind-lb-ingress"

func runLBIngressUnbound(s *Snapshot) []Finding {
	bound, ipvsMode := boundAddrs(s)
	if !ipvsMode {
		return nil
	}
	var out []Finding
	for _, sa := range serviceAddrs(s) {
		if sa.Kind != "LoadBalancer ingress" || !sa.VIP || bound[sa.Addr] {
			continue
		}
		ev := []string{
			fmt.Sprintf("Service %s: LoadBalancer ingress %s (ipMode VIP)", svcName(sa.Svc), sa.Addr),
			fmt.Sprintf("%s is not bound to %s", sa.Addr, dummyLink),
		}
		if v, ok := sa.Svc.Annotations[bindAnnotation]; ok {
			ev = append(ev, fmt.Sprintf("annotation %s: %q", bindAnnotation, v))
		}
		out = append(out, Finding{
			ID:       IDLBIngressUnbound,
			Severity: Info,
			Title:    fmt.Sprintf("%s of %s is not bound: traffic from this node to it goes out to the load balancer", sa.Addr, svcName(sa.Svc)),
			Evidence: ev,
			Why: "Left unbound, the IP is not local: a pod or the node that connects to it sends the packets to the " +
				"load balancer and back, which can hairpin, loop or be refused depending on the load balancer (the " +
				"loopback case of Tencent's prevent-loopback). Bound, the load balancer's packets from its VIP are " +
				"dropped as martians instead (lb-ingress-martian). Either is a valid choice.",
			Fix: "If pods must reach it locally, bind it: annotate the Service " + bindAnnotation + ": \"true\" or keep " +
				"--ipvs-bind-lb-ingress=true (the default); otherwise have pods use the cluster IP.",
		})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Title < out[j].Title })
	return out
}
