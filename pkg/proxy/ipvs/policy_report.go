package ipvs

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/component-base/metrics"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/proxy"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/forkconfig"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/desired"
)

// Fork metrics of the policies.
var (
	lbIngressUnbound = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Subsystem:      "kubeproxy_ipvs",
		Name:           "lb_ingress_unbound",
		Help:           "LoadBalancer ingress IPs (per Service) left unbound and unserved by policy: the kube-proxy-ipvs.io/bind-lb-ingress annotation or --ipvs-bind-lb-ingress=false.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"ip_family"})
	refusedAddresses = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Subsystem:      "kubeproxy_ipvs",
		Name:           "refused_addresses",
		Help:           "externalIPs and LoadBalancer ingress IPs (per Service) the address guard refuses to serve, by reason.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"ip_family", "reason"})
)

// policyState is the proxier's part of the fork's policies: their inputs that come from the
// cluster rather than the Service, and what was last reported per Service. Guarded by
// Proxier.mu.
type policyState struct {
	nodeName string

	unboundByDefault bool
	protected        []netip.Prefix
	restrict         bool
	allowed          []netip.Prefix

	// addrs are the cluster's addresses as the sync last took them (intake.go).
	addrs *clusterAddrView

	// byPort are the decisions of each service port's last desired state; ports indexes them
	// by Service; touched are the Services whose decisions may have changed since the last
	// report; reported is what was last reported per Service.
	byPort   map[proxy.ServicePortName][]desired.AddressDecision
	ports    map[types.NamespacedName]sets.Set[proxy.ServicePortName]
	uids     map[types.NamespacedName]types.UID
	touched  sets.Set[types.NamespacedName]
	reported map[types.NamespacedName]sets.Set[desired.AddressDecision]
	counts   map[desired.Reason]int
}

func newPolicyState(family v1.IPFamily, nodeName string, fork forkconfig.Config) *policyState {
	s := &policyState{
		nodeName:         nodeName,
		unboundByDefault: !fork.BindLoadBalancerIngress,
		protected:        prefixesInFamily(family, forkconfig.Prefixes(fork.ProtectedCIDRs)),
		restrict:         len(fork.ExternalIPCIDRs) > 0,
		allowed:          prefixesInFamily(family, forkconfig.Prefixes(fork.ExternalIPCIDRs)),
		addrs:            buildAddrView(nodeName, nil, nil),
		byPort:           map[proxy.ServicePortName][]desired.AddressDecision{},
		ports:            map[types.NamespacedName]sets.Set[proxy.ServicePortName]{},
		uids:             map[types.NamespacedName]types.UID{},
		touched:          sets.New[types.NamespacedName](),
		reported:         map[types.NamespacedName]sets.Set[desired.AddressDecision]{},
		counts:           map[desired.Reason]int{},
	}
	return s
}

func prefixesInFamily(family v1.IPFamily, ps []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if desired.InFamily(family, p.Addr()) {
			out = append(out, p)
		}
	}
	return out
}

// fill puts the policies' inputs into a NodeContext.
func (s *policyState) fill(ctx *desired.NodeContext) {
	ctx.LBIngressUnboundByDefault = s.unboundByDefault
	ctx.OwnNodeAddresses = s.addrs.ownAddrs
	ctx.OtherNodeAddresses = s.addrs.otherNodes
	ctx.APIServerEndpoints = s.addrs.apiEndpoints
	ctx.APIServerAddresses = s.addrs.apiAddrs
	ctx.ProtectedCIDRs = s.protected
	ctx.RestrictExternalIPs = s.restrict
	ctx.ExternalIPCIDRs = s.allowed
}

// applyForkContext puts the policies' current inputs into the node context before service
// ports are computed.
func (p *Proxier) applyForkContext() {
	p.policy.fill(&p.nodeCtx)
	p.svcAddrs.fill(&p.nodeCtx)
}

// notePolicyDecisions records the decisions of a service port's new desired state (sp nil:
// the service port is gone).
func (p *Proxier) notePolicyDecisions(name proxy.ServicePortName, sp proxy.ServicePort, decisions []desired.AddressDecision) {
	s := p.policy
	svc := name.NamespacedName
	old, had := s.byPort[name]
	if sp == nil || len(decisions) == 0 {
		if !had {
			return
		}
		delete(s.byPort, name)
		if ports := s.ports[svc]; ports != nil {
			ports.Delete(name)
			if ports.Len() == 0 {
				delete(s.ports, svc)
			}
		}
	} else {
		if had && slices.Equal(old, decisions) {
			return
		}
		s.byPort[name] = decisions
		if s.ports[svc] == nil {
			s.ports[svc] = sets.New[proxy.ServicePortName]()
		}
		s.ports[svc].Insert(name)
		if uid, ok := desired.ServiceUID(sp); ok {
			s.uids[svc] = uid
		}
	}
	s.touched.Insert(svc)
}

// reportPolicyDecisions reports what changed since the last report, per Service: a Warning
// Event and a log line for each new refusal or invalid annotation, a V(2) log line for each LB
// ingress IP whose binding changed, and the gauges.
func (p *Proxier) reportPolicyDecisions(logger klog.Logger) {
	s := p.policy
	if s.touched.Len() == 0 {
		return
	}
	touched := s.touched.UnsortedList()
	sort.Slice(touched, func(i, j int) bool { return touched[i].String() < touched[j].String() })
	for _, svc := range touched {
		now := sets.New[desired.AddressDecision]()
		for name := range s.ports[svc] {
			now.Insert(s.byPort[name]...)
		}
		before := s.reported[svc]
		for _, d := range sortedDecisions(now.Difference(before)) {
			s.counts[d.Reason]++
			p.reportDecision(logger, svc, d, true)
		}
		for _, d := range sortedDecisions(before.Difference(now)) {
			s.counts[d.Reason]--
			p.reportDecision(logger, svc, d, false)
		}
		if now.Len() == 0 {
			delete(s.reported, svc)
			delete(s.uids, svc)
		} else {
			s.reported[svc] = now
		}
	}
	s.touched = sets.New[types.NamespacedName]()

	family := string(p.family)
	lbIngressUnbound.WithLabelValues(family).Set(float64(s.counts[desired.ReasonUnboundByAnnotation] + s.counts[desired.ReasonUnboundByDefault]))
	for _, r := range guardReasons {
		refusedAddresses.WithLabelValues(family, string(r)).Set(float64(s.counts[r]))
	}
}

func sortedDecisions(ds sets.Set[desired.AddressDecision]) []desired.AddressDecision {
	out := ds.UnsortedList()
	sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i]) < fmt.Sprint(out[j]) })
	return out
}

func (p *Proxier) reportDecision(logger klog.Logger, svc types.NamespacedName, d desired.AddressDecision, added bool) {
	ref := klog.KRef(svc.Namespace, svc.Name)
	switch {
	case d.Reason == desired.ReasonUnboundByAnnotation || d.Reason == desired.ReasonUnboundByDefault:
		if added {
			logger.V(2).Info("Load balancer ingress IP not bound by policy", "service", ref, "ip", d.Address, "reason", d.Reason)
		} else {
			logger.V(2).Info("Load balancer ingress IP no longer left unbound by policy", "service", ref, "ip", d.Address, "reason", d.Reason)
		}
		return
	case !added:
		logger.Info("Address no longer refused", "service", ref, "source", d.Source, "address", d.Address, "reason", d.Reason)
		return
	case d.Reason == desired.ReasonInvalidPort:
		logger.Info("Skipping endpoint with an invalid port", "service", ref, "endpoint", d.Address)
		p.decisionEvent(svc, d, "InvalidEndpoint", fmt.Sprintf("Endpoint %s has a port outside 1-65535; skipped", d.Address))
	case d.Reason == desired.ReasonInvalidAnnotation:
		logger.Info("Ignoring invalid annotation value", "service", ref, "annotation", d.Detail, "value", shorten(d.Address, maxLoggedValue))
		p.decisionEvent(svc, d, "InvalidAnnotation", fmt.Sprintf("Annotation %s has invalid value %q (want \"true\" or \"false\"); ignored, the next binding rule applies",
			d.Detail, shorten(d.Address, maxEventValue)))
	default:
		logger.Info("Refusing to serve address", "service", ref, "source", d.Source, "address", d.Address, "reason", d.Reason, "detail", d.Detail)
		p.decisionEvent(svc, d, "AddressRefused", fmt.Sprintf("%s %q is not served: %s", d.Source, shorten(d.Address, maxEventValue), explain(d)))
	}
}

// explain is the human reason of a refusal, for the Event.
func explain(d desired.AddressDecision) string {
	switch d.Reason {
	case desired.ReasonInvalid:
		return "not an IP address"
	case desired.ReasonWrongFamily:
		return "not of an IP family of the Service"
	case desired.ReasonUnspecified:
		return "the unspecified address"
	case desired.ReasonLoopback:
		return "a loopback address"
	case desired.ReasonLinkLocal:
		return "a link-local address"
	case desired.ReasonMulticast:
		return "a multicast or broadcast address"
	case desired.ReasonAPIServer:
		return fmt.Sprintf("it is an apiserver endpoint (%s)", d.Detail)
	case desired.ReasonNodeAddress:
		return fmt.Sprintf("it is an address of node %s", d.Detail)
	case desired.ReasonProtected:
		return fmt.Sprintf("it is inside the protected CIDR %s (--ipvs-protected-cidrs)", d.Detail)
	case desired.ReasonNotAllowed:
		return "it is outside --ipvs-external-ip-cidrs"
	case desired.ReasonClusterIP:
		return "it is the cluster IP of a Service"
	case desired.ReasonServiceCIDR:
		return fmt.Sprintf("it is inside the service CIDR %s", d.Detail)
	case desired.ReasonHostListener:
		return fmt.Sprintf("it is this node's address and a host process listens on %s", d.Detail)
	}
	return string(d.Reason)
}

func (p *Proxier) serviceEvent(svc types.NamespacedName, reason, note string) {
	if p.recorder == nil {
		return
	}
	ref := &v1.ObjectReference{
		APIVersion: "v1", Kind: "Service", Namespace: svc.Namespace, Name: svc.Name, UID: p.policy.uids[svc],
	}
	p.recorder.Eventf(ref, nil, v1.EventTypeWarning, reason, "Sync", "%s", shorten(note, maxEventNote))
}

// guardReasons are the refusal reasons, in the order the gauge reports them.
var guardReasons = []desired.Reason{
	desired.ReasonInvalid, desired.ReasonWrongFamily, desired.ReasonUnspecified, desired.ReasonLoopback, desired.ReasonLinkLocal,
	desired.ReasonMulticast, desired.ReasonAPIServer, desired.ReasonNodeAddress, desired.ReasonProtected, desired.ReasonNotAllowed,
	desired.ReasonClusterIP, desired.ReasonServiceCIDR, desired.ReasonHostListener,
}
