package desired

import (
	"reflect"
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/kubernetes/pkg/proxy"
	"k8s.io/utils/ptr"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/objects"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/internal/fixture"
)

// forkInput runs a one-port Service through upstream's trackers with our NewServicePortInfo, as
// the proxier does.
func forkInput(t *testing.T, family v1.IPFamily, svc *v1.Service, slices ...*discovery.EndpointSlice) ServicePortInput {
	t.Helper()
	sct := proxy.NewServiceChangeTracker(family, NewServicePortInfo, nil)
	sct.Update(nil, svc)
	spm := make(proxy.ServicePortMap)
	spm.Update(sct)
	ect := proxy.NewEndpointsChangeTracker(family, fixture.Node, nil, nil)
	for _, s := range slices {
		ect.EndpointSliceUpdate(s, false)
	}
	em := make(proxy.EndpointsMap)
	em.Update(ect)
	if len(spm) != 1 {
		t.Fatalf("want 1 service port in %s, got %d", family, len(spm))
	}
	for name, sp := range spm {
		if _, ok := sp.(*servicePortInfo); !ok {
			t.Fatalf("service port is a %T, want *servicePortInfo", sp)
		}
		return ServicePortInput{Name: name, Port: sp, Endpoints: em[name]}
	}
	return ServicePortInput{}
}

func dualStack(v6ClusterIP string) func(*v1.Service) {
	return func(s *v1.Service) {
		s.Spec.ClusterIPs = append(s.Spec.ClusterIPs, v6ClusterIP)
		s.Spec.IPFamilies = []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol}
	}
}

// multiIngress is a LoadBalancer Service (Local, health check 31000) with four ingress
// entries: ipMode VIP, Proxy, unset, and an IPv6 one.
func multiIngress(opts ...func(*v1.Service)) *v1.Service {
	all := append([]func(*v1.Service){
		fixture.LoadBalancer(30080,
			v1.LoadBalancerIngress{IP: "203.0.113.7", IPMode: ptr.To(v1.LoadBalancerIPModeVIP)},
			v1.LoadBalancerIngress{IP: "203.0.113.8", IPMode: ptr.To(v1.LoadBalancerIPModeProxy)},
			v1.LoadBalancerIngress{IP: "203.0.113.9"},
			v1.LoadBalancerIngress{Hostname: "lb.example.com"},
			v1.LoadBalancerIngress{IP: "2001:db8::7"},
		),
		fixture.ExternalLocal(31000),
		dualStack("fd00:96::10"),
	}, opts...)
	return fixture.Service("web", "10.96.0.10", all...)
}

// served are the LB IPs a state serves: each must have its virtual server, KUBE-LOAD-BALANCER
// entry and binding together, or none of them.
func served(t *testing.T, st ServicePortState, family v1.IPFamily, candidates ...string) []string {
	t.Helper()
	var out []string
	for _, c := range candidates {
		a := fixture.Addr(c)
		entry := EntryIPPort(a, v1.ProtocolTCP, 80)
		hasVS := slices.ContainsFunc(st.VirtualServers, func(v VirtualServerState) bool { return v.VirtualServer.Key == fixture.Key(c, objects.TCP, 80) })
		hasEntry := slices.Contains(st.SetEntries[SetName(family, SetLoadBalancer)], entry) ||
			slices.Contains(st.SetEntries[SetName(family, SetLoadBalancerLocal)], entry)
		hasBinding := slices.Contains(st.Bindings, a) || slices.Contains(st.SetEntries[SetName(family, SetIPVSIPs)], EntryIP(a))
		if hasVS != hasEntry || hasVS != hasBinding {
			t.Errorf("%s half served: vs=%v entry=%v binding=%v%s", c, hasVS, hasEntry, hasBinding, dump(st))
		}
		if hasVS {
			out = append(out, c)
		}
	}
	return out
}

var ingressIPs = []string{"203.0.113.7", "203.0.113.8", "203.0.113.9"}

func TestLBBindingInDesiredState(t *testing.T) {
	unbound := func(reason Reason, ips ...string) []AddressDecision {
		var out []AddressDecision
		for _, ip := range ips {
			out = append(out, AddressDecision{Source: SourceLoadBalancer, Address: ip, Reason: reason})
		}
		return out
	}
	invalid := AddressDecision{Source: SourceAnnotation, Address: "yes", Reason: ReasonInvalidAnnotation, Detail: AnnotationBindLBIngress}
	cases := []struct {
		name       string
		opts       []func(*v1.Service)
		defaultOff bool
		want4      []string
		want6      bool
		decisions4 []AddressDecision
	}{
		{name: "upstream: VIP and unset bound, Proxy not", want4: []string{"203.0.113.7", "203.0.113.9"}, want6: true},
		{name: "global default off", defaultOff: true, decisions4: unbound(ReasonUnboundByDefault, "203.0.113.7", "203.0.113.9")},
		{name: "annotation false", opts: []func(*v1.Service){fixture.Annotate(AnnotationBindLBIngress, "false")},
			decisions4: unbound(ReasonUnboundByAnnotation, ingressIPs...)},
		{name: "annotation true binds ipMode Proxy too", opts: []func(*v1.Service){fixture.Annotate(AnnotationBindLBIngress, "true")}, defaultOff: true,
			want4: ingressIPs, want6: true},
		{name: "TKE prevent-loopback binds with default off", opts: []func(*v1.Service){fixture.Annotate(AnnotationTKEPreventLoopback, "true")}, defaultOff: true,
			want4: ingressIPs, want6: true},
		{name: "annotation false beats TKE", opts: []func(*v1.Service){fixture.Annotate(AnnotationTKEPreventLoopback, "true"), fixture.Annotate(AnnotationBindLBIngress, "false")},
			decisions4: unbound(ReasonUnboundByAnnotation, ingressIPs...)},
		{name: "invalid annotation: default on applies, reported once", opts: []func(*v1.Service){fixture.Annotate(AnnotationBindLBIngress, "yes")},
			want4: []string{"203.0.113.7", "203.0.113.9"}, want6: true, decisions4: []AddressDecision{invalid}},
		{name: "invalid annotation: default off applies", opts: []func(*v1.Service){fixture.Annotate(AnnotationBindLBIngress, "yes")}, defaultOff: true,
			decisions4: append([]AddressDecision{invalid}, unbound(ReasonUnboundByDefault, "203.0.113.7", "203.0.113.9")...)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			svc := multiIngress(c.opts...)
			c4, c6 := ctx4(), ctx6()
			c4.LBIngressUnboundByDefault, c6.LBIngressUnboundByDefault = c.defaultOff, c.defaultOff
			st4 := DesiredServicePort(c4, forkInput(t, v1.IPv4Protocol, svc))
			st6 := DesiredServicePort(c6, forkInput(t, v1.IPv6Protocol, svc))
			if got := served(t, st4, v1.IPv4Protocol, ingressIPs...); !reflect.DeepEqual(got, c.want4) {
				t.Errorf("IPv4 served %v, want %v", got, c.want4)
			}
			if got := len(served(t, st6, v1.IPv6Protocol, "2001:db8::7")) == 1; got != c.want6 {
				t.Errorf("IPv6 2001:db8::7 served = %v, want %v", got, c.want6)
			}
			if !reflect.DeepEqual(st4.Decisions, c.decisions4) {
				t.Errorf("IPv4 decisions %+v, want %+v", st4.Decisions, c.decisions4)
			}
			// The IPv6 proxier reports its own IP only; the annotation is the primary's to report.
			for _, d := range st6.Decisions {
				if d.Reason == ReasonInvalidAnnotation || (d.Address != "2001:db8::7") {
					t.Errorf("IPv6 proxier reported %+v", d)
				}
			}
			// NodePort and the health check node port stay whatever the binding.
			if !slices.ContainsFunc(st4.VirtualServers, func(v VirtualServerState) bool {
				return v.VirtualServer.Key == fixture.Key("192.168.0.10", objects.TCP, 30080)
			}) ||
				!slices.Contains(st4.SetEntries[SetHealthCheckNodePort], "31000") {
				t.Errorf("NodePort or health check node port missing:%s", dump(st4))
			}
		})
	}
}

// TestUnboundIsExactlyIPModeProxy: a Service whose ingress IPs are not bound by policy gets
// the same kernel state as the same Service with every ingress entry in ipMode Proxy.
func TestUnboundIsExactlyIPModeProxy(t *testing.T) {
	proxied := fixture.Service("web", "10.96.0.10", fixture.LoadBalancer(30080,
		v1.LoadBalancerIngress{IP: "203.0.113.7", IPMode: ptr.To(v1.LoadBalancerIPModeProxy)},
		v1.LoadBalancerIngress{IP: "203.0.113.9", IPMode: ptr.To(v1.LoadBalancerIPModeProxy)}),
		fixture.ExternalLocal(31000), func(s *v1.Service) { s.Spec.LoadBalancerSourceRanges = []string{"192.0.2.0/24"} })
	annotated := proxied.DeepCopy()
	annotated.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "203.0.113.7"}, {IP: "203.0.113.9"}}
	fixture.Annotate(AnnotationBindLBIngress, "false")(annotated)
	sl := fixture.Slice(proxied, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.1.5", Node: "node-b"}, fixture.Endpoint{IP: "10.244.2.6", Node: fixture.Node})

	want, wantBlocked := ServicePort(ctx4(), forkInput(t, v1.IPv4Protocol, proxied, sl))
	got, gotBlocked := ServicePort(ctx4(), forkInput(t, v1.IPv4Protocol, annotated, sl))
	if len(got.Decisions) != 2 {
		t.Errorf("decisions %+v, want the two unbound IPs", got.Decisions)
	}
	got.Decisions = nil
	checkState(t, got, want)
	if !reflect.DeepEqual(gotBlocked, wantBlocked) {
		t.Errorf("blocked %v, want %v", gotBlocked, wantBlocked)
	}
	// And binding it back gives the state of ipMode VIP.
	bound := annotated.DeepCopy()
	bound.Annotations[AnnotationBindLBIngress] = "true"
	if n := len(served(t, DesiredServicePort(ctx4(), forkInput(t, v1.IPv4Protocol, bound, sl)), v1.IPv4Protocol, "203.0.113.7", "203.0.113.9")); n != 2 {
		t.Errorf("annotation true served %d LB IPs, want 2", n)
	}
}

func TestGuardInDesiredState(t *testing.T) {
	ctx := guardCtx4()
	ctx.RestrictExternalIPs = false
	svc := fixture.Service("web", "10.96.0.10", fixture.NodePort(30080),
		fixture.ExternalIPs("198.51.100.1", "192.168.0.11", "not-an-ip", "127.0.0.1", "2001:db8::1", "192.168.0.10"),
		func(s *v1.Service) { s.Spec.Ports[0].Port = 6443 })
	st := DesiredServicePort(ctx, forkInput(t, v1.IPv4Protocol, svc))

	for _, refused := range []string{"192.168.0.11", "127.0.0.1", "192.168.0.10"} {
		k := fixture.Key(refused, objects.TCP, 6443)
		if slices.ContainsFunc(st.VirtualServers, func(v VirtualServerState) bool { return v.VirtualServer.Key == k }) ||
			slices.Contains(st.Bindings, fixture.Addr(refused)) ||
			slices.Contains(st.SetEntries["KUBE-EXTERNAL-IP"], EntryIPPort(fixture.Addr(refused), v1.ProtocolTCP, 6443)) {
			t.Errorf("refused %s still programmed:%s", refused, dump(st))
		}
	}
	if !slices.Contains(st.Bindings, fixture.Addr("198.51.100.1")) || !slices.Contains(st.SetEntries["KUBE-EXTERNAL-IP"], "198.51.100.1,tcp:6443") {
		t.Errorf("an ordinary externalIP is not served:%s", dump(st))
	}
	want := []AddressDecision{
		{Source: SourceExternalIP, Address: "192.168.0.11", Reason: ReasonNodeAddress, Detail: "node-b"},
		{Source: SourceExternalIP, Address: "not-an-ip", Reason: ReasonInvalid},
		{Source: SourceExternalIP, Address: "127.0.0.1", Reason: ReasonLoopback},
		{Source: SourceExternalIP, Address: "2001:db8::1", Reason: ReasonWrongFamily},
		{Source: SourceExternalIP, Address: "192.168.0.10", Reason: ReasonAPIServer, Detail: "192.168.0.10:6443"},
	}
	if !reflect.DeepEqual(st.Decisions, want) {
		t.Errorf("decisions\n got %+v\nwant %+v", st.Decisions, want)
	}

	// On another port the apiserver's node address is served as upstream serves a local
	// address: a virtual server, no binding.
	svc.Spec.Ports[0].Port = 8888
	st = DesiredServicePort(ctx, forkInput(t, v1.IPv4Protocol, svc))
	if !slices.ContainsFunc(st.VirtualServers, func(v VirtualServerState) bool {
		return v.VirtualServer.Key == fixture.Key("192.168.0.10", objects.TCP, 8888)
	}) ||
		slices.Contains(st.Bindings, fixture.Addr("192.168.0.10")) {
		t.Errorf("the node's own address on port 8888 should be served unbound:%s", dump(st))
	}

	// A refused LB IP: nothing, but the NodePort.
	lb := fixture.Service("lb", "10.96.0.11", fixture.LoadBalancer(30081, v1.LoadBalancerIngress{IP: "192.168.0.11"}, v1.LoadBalancerIngress{IP: "203.0.113.7"}))
	st = DesiredServicePort(ctx, forkInput(t, v1.IPv4Protocol, lb))
	if got := served(t, st, v1.IPv4Protocol, "192.168.0.11", "203.0.113.7"); !reflect.DeepEqual(got, []string{"203.0.113.7"}) {
		t.Errorf("served %v, want only 203.0.113.7", got)
	}
	if !reflect.DeepEqual(st.Decisions, []AddressDecision{{Source: SourceLoadBalancer, Address: "192.168.0.11", Reason: ReasonNodeAddress, Detail: "node-b"}}) {
		t.Errorf("decisions %+v", st.Decisions)
	}

	// A dual-stack Service: the IPv6 proxier leaves the family-independent reports to IPv4.
	ds := fixture.Service("ds", "10.96.0.12", fixture.ExternalIPs("not-an-ip", "2001:db8::1", "fe80::1"), dualStack("fd00:96::12"))
	st6 := DesiredServicePort(ctx6(), forkInput(t, v1.IPv6Protocol, ds))
	if !reflect.DeepEqual(st6.Decisions, []AddressDecision{{Source: SourceExternalIP, Address: "fe80::1", Reason: ReasonLinkLocal}}) {
		t.Errorf("IPv6 decisions %+v", st6.Decisions)
	}
	if !slices.Contains(st6.Bindings, fixture.Addr("2001:db8::1")) {
		t.Errorf("IPv6 externalIP not served:%s", dump(st6))
	}
	if st4 := DesiredServicePort(ctx4(), forkInput(t, v1.IPv4Protocol, ds)); !reflect.DeepEqual(st4.Decisions, []AddressDecision{{Source: SourceExternalIP, Address: "not-an-ip", Reason: ReasonInvalid}}) {
		t.Errorf("IPv4 decisions %+v", st4.Decisions)
	}
}
