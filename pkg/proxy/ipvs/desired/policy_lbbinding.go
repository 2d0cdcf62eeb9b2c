package desired

import (
	v1 "k8s.io/api/core/v1"
)

// Whether a LoadBalancer ingress IP is bound to kube-ipvs0 (and so captured by the node) is
// decided per Service and per ingress entry. Binding keeps in-cluster traffic to the load
// balancer on the node (upstream's behaviour); not binding makes the IP an ordinary remote
// address, as upstream does for ipMode Proxy, which load balancers that send health checks
// or traffic with their own VIP as source need.

const (
	// AnnotationBindLBIngress overrides the global default for one Service: "true" or "false".
	AnnotationBindLBIngress = "kube-proxy-ipvs.io/bind-lb-ingress"
	// AnnotationTKEPreventLoopback is Tencent's fork's annotation: "true" means bind. Any other
	// value says nothing (that fork did not bind by default).
	AnnotationTKEPreventLoopback = "service.cloud.tencent.com/prevent-loopback"
)

// LBBindingReason names the rule that decided whether a LoadBalancer ingress IP is bound.
type LBBindingReason string

const (
	// LBBindingByAnnotation: kube-proxy-ipvs.io/bind-lb-ingress decided.
	LBBindingByAnnotation LBBindingReason = "annotation"
	// LBBindingByTKEAnnotation: service.cloud.tencent.com/prevent-loopback "true" decided.
	LBBindingByTKEAnnotation LBBindingReason = "tke-prevent-loopback"
	// LBBindingByIPMode: the ingress entry's ipMode Proxy (or any ipMode but VIP) decided,
	// as upstream's rule.
	LBBindingByIPMode LBBindingReason = "ip-mode-proxy"
	// LBBindingByDefault: --ipvs-bind-lb-ingress decided.
	LBBindingByDefault LBBindingReason = "default"
)

// LBBindingInput is everything the binding of one ingress IP of one Service depends on.
type LBBindingInput struct {
	// Annotation is the value of kube-proxy-ipvs.io/bind-lb-ingress; nil when absent.
	Annotation *string
	// TKEPreventLoopback is the value of service.cloud.tencent.com/prevent-loopback; nil when
	// absent.
	TKEPreventLoopback *string
	// IPMode is the ingress entry's ipMode; nil when unset (which upstream reads as VIP).
	IPMode *v1.LoadBalancerIPMode
	// Default is --ipvs-bind-lb-ingress.
	Default bool
}

// LBBindingDecision is the outcome for one ingress IP.
type LBBindingDecision struct {
	Bind   bool
	Reason LBBindingReason
	// InvalidAnnotation reports that kube-proxy-ipvs.io/bind-lb-ingress is set to something
	// other than "true" or "false"; it was ignored and the next rule decided.
	InvalidAnnotation bool
}

// DecideLBBinding applies the rules, highest precedence first: our annotation; then the TKE
// annotation set to "true"; then ipMode Proxy (not bound); then the global default.
func DecideLBBinding(in LBBindingInput) LBBindingDecision {
	var d LBBindingDecision
	if in.Annotation != nil {
		switch *in.Annotation {
		case "true":
			return LBBindingDecision{Bind: true, Reason: LBBindingByAnnotation}
		case "false":
			return LBBindingDecision{Bind: false, Reason: LBBindingByAnnotation}
		default:
			d.InvalidAnnotation = true
		}
	}
	switch {
	case in.TKEPreventLoopback != nil && *in.TKEPreventLoopback == "true":
		d.Bind, d.Reason = true, LBBindingByTKEAnnotation
	case in.IPMode != nil && *in.IPMode != v1.LoadBalancerIPModeVIP:
		// Upstream serves only VIP mode: Proxy, or any value it does not know, is not bound.
		d.Bind, d.Reason = false, LBBindingByIPMode
	default:
		d.Bind, d.Reason = in.Default, LBBindingByDefault
	}
	return d
}
