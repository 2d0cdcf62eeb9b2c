package diagnose

import (
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Helpers over the cluster's objects and kube-ipvs0, shared by the Service checks.

const dummyLink = "kube-ipvs0"

// boundAddrs are the addresses on kube-ipvs0 (nil, false when the link does not exist: the
// node does not run an IPVS kube-proxy).
func boundAddrs(s *Snapshot) (map[netip.Addr]bool, bool) {
	l, ok := s.link(dummyLink)
	if !ok {
		return nil, false
	}
	out := make(map[netip.Addr]bool, len(l.Addrs))
	for _, a := range l.Addrs {
		out[a] = true
	}
	return out, true
}

// ipvsAddrs are the addresses of IPVS virtual servers, with their "addr:port/PROTO" keys.
func ipvsAddrs(s *Snapshot) map[netip.Addr][]string {
	out := map[netip.Addr][]string{}
	for _, vs := range s.IPVS {
		out[vs.Address] = append(out[vs.Address], vs.Key.String())
	}
	return out
}

func svcName(svc *corev1.Service) string { return svc.Namespace + "/" + svc.Name }

// svcAddr is an address a Service asks nodes to serve besides its cluster IP.
type svcAddr struct {
	Svc  *corev1.Service
	Addr netip.Addr
	Kind string // "externalIP" or "LoadBalancer ingress"
	// VIP: an LB ingress with ipMode VIP (or none), which upstream binds.
	VIP bool
}

// serviceAddrs lists every externalIP and LoadBalancer ingress IP of every Service.
func serviceAddrs(s *Snapshot) []svcAddr {
	var out []svcAddr
	for i := range s.Services {
		svc := &s.Services[i]
		for _, ip := range svc.Spec.ExternalIPs {
			if a, err := netip.ParseAddr(strings.TrimSpace(ip)); err == nil {
				out = append(out, svcAddr{Svc: svc, Addr: a.Unmap(), Kind: "externalIP"})
			}
		}
		if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
			continue
		}
		for _, ing := range svc.Status.LoadBalancer.Ingress {
			if a, err := netip.ParseAddr(ing.IP); err == nil {
				vip := ing.IPMode == nil || *ing.IPMode == corev1.LoadBalancerIPModeVIP
				out = append(out, svcAddr{Svc: svc, Addr: a.Unmap(), Kind: "LoadBalancer ingress", VIP: vip})
			}
		}
	}
	return out
}

// sysctlLines renders the named sysctls as "key = value" evidence, "(absent)" when missing.
func sysctlLines(s *Snapshot, keys ...string) []string {
	var out []string
	for _, k := range keys {
		v, ok := s.Sysctls[k]
		if !ok {
			v = "(absent)"
		}
		out = append(out, "sysctl "+strings.ReplaceAll(k, "/", ".")+" = "+v)
	}
	return out
}
