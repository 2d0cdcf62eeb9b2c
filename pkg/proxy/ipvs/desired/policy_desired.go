package desired

import (
	"net/netip"

	"k8s.io/kubernetes/pkg/proxy"
)

// AddressDecision is one thing the fork's policies did differently from upstream for a
// service port: an address refused by the guard, an LB ingress IP left unbound by policy, or
// an invalid annotation (Address is then the annotation's value). It is comparable, so the
// proxier can diff decisions between syncs.
type AddressDecision struct {
	Source  AddressSource
	Address string
	Reason  Reason
	// Detail names what the address belongs to: a node, an apiserver endpoint (address:port
	// when only that port is refused), a CIDR; or the annotation's name.
	Detail string
}

// servedExternalIPs are the service port's externalIPs in ctx.Family that the address guard
// lets through; the others are recorded as decisions.
func (b *builder) servedExternalIPs(sp proxy.ServicePort) []netip.Addr {
	v := portView(b.ctx.Family, sp)
	var out []netip.Addr
	for _, raw := range v.externalIPs {
		verdict := GuardAddress(b.ctx, AddressCheck{Source: SourceExternalIP, Address: raw, Port: sp.Port(), Protocol: sp.Protocol(), ServiceFamilies: v.families})
		switch {
		case verdict.Reason == "":
			out = append(out, verdict.Addr)
		case verdict.Reason != reasonOtherFamily:
			b.decide(v, AddressDecision{Source: SourceExternalIP, Address: raw, Reason: verdict.Reason, Detail: verdict.Detail})
		}
	}
	return out
}

// servedLoadBalancerIPs are the service port's LoadBalancer ingress IPs in ctx.Family that
// are to be served as upstream serves VIP-mode ingress IPs (virtual server, ipset entries,
// binding): those the binding policy binds and the address guard lets through.
func (b *builder) servedLoadBalancerIPs(sp proxy.ServicePort) []netip.Addr {
	v := portView(b.ctx.Family, sp)
	if DecideLBBinding(LBBindingInput{Annotation: v.bindAnnotation}).InvalidAnnotation {
		// Reported whatever the Service's type or ingress: the operator meant something.
		b.decide(v, AddressDecision{Source: SourceAnnotation, Address: *v.bindAnnotation, Reason: ReasonInvalidAnnotation, Detail: AnnotationBindLBIngress})
	}
	var out []netip.Addr
	for _, ing := range v.ingress {
		verdict := GuardAddress(b.ctx, AddressCheck{Source: SourceLoadBalancer, Address: ing.ip, Port: sp.Port(), Protocol: sp.Protocol(), ServiceFamilies: v.families})
		if verdict.Reason == reasonOtherFamily {
			continue
		}
		d := DecideLBBinding(LBBindingInput{
			Annotation:         v.bindAnnotation,
			TKEPreventLoopback: v.tkeAnnotation,
			IPMode:             ing.mode,
			Default:            !b.ctx.LBIngressUnboundByDefault,
		})
		if !d.Bind {
			// As upstream's ipMode Proxy: nothing at all for this address.
			if verdict.Reason == "" {
				switch d.Reason {
				case LBBindingByAnnotation:
					b.decide(v, AddressDecision{Source: SourceLoadBalancer, Address: verdict.Addr.String(), Reason: ReasonUnboundByAnnotation})
				case LBBindingByDefault:
					b.decide(v, AddressDecision{Source: SourceLoadBalancer, Address: verdict.Addr.String(), Reason: ReasonUnboundByDefault})
				}
			}
			continue
		}
		if verdict.Reason != "" {
			b.decide(v, AddressDecision{Source: SourceLoadBalancer, Address: ing.ip, Reason: verdict.Reason, Detail: verdict.Detail})
			continue
		}
		out = append(out, verdict.Addr)
	}
	return out
}

// decide records a decision once. Decisions every family's proxier would make alike (a value
// that is no address of either family) are kept by the Service's primary family only, so a
// dual-stack node reports them once.
func (b *builder) decide(v *servicePortInfo, d AddressDecision) {
	if familyIndependent(d.Reason) && v.primaryFamily() != b.ctx.Family {
		return
	}
	for _, x := range b.st.Decisions {
		if x == d {
			return
		}
	}
	b.st.Decisions = append(b.st.Decisions, d)
}
