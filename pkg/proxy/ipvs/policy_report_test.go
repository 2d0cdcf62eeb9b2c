package ipvs

import (
	"net/netip"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/component-base/metrics/testutil"
	"k8s.io/utils/ptr"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/forkconfig"
	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/desired"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/internal/fixture"
)

// policyEnv is a test env with the fork settings changed and a fake event recorder.
func policyEnv(t *testing.T, mutate func(*forkconfig.Config)) (*env, *events.FakeRecorder) {
	t.Helper()
	e := newEnv(t)
	fork := forkconfig.Default()
	if mutate != nil {
		mutate(&fork)
	}
	rec := events.NewFakeRecorder(100)
	e.p.policy = newPolicyState(e.p.family, e.p.nodeName, fork)
	e.p.recorder = rec
	return e, rec
}

// drain returns the events recorded so far.
func drain(rec *events.FakeRecorder) []string {
	var out []string
	for {
		select {
		case ev := <-rec.Events:
			out = append(out, ev)
		default:
			return out
		}
	}
}

func lbService(name, clusterIP string, opts ...func(*v1.Service)) *v1.Service {
	all := append([]func(*v1.Service){
		fixture.LoadBalancer(30080, v1.LoadBalancerIngress{IP: "203.0.113.7"}),
		fixture.ExternalLocal(31000),
	}, opts...)
	return fixture.Service(name, clusterIP, all...)
}

var (
	lbKey       = fixture.Key("203.0.113.7", kipvs.TCP, 80)
	lbNodePort  = fixture.Key("192.168.0.10", kipvs.TCP, 30080)
	lbEntry     = "203.0.113.7,tcp:80"
	nodeBAddr   = "192.168.0.11"
	nodeBKey    = fixture.Key(nodeBAddr, kipvs.TCP, 80)
	extIPEntry  = nodeBAddr + ",tcp:80"
	apiEndpoint = netip.MustParseAddrPort("192.168.0.10:6443")
)

// lbProgrammed reports whether the LB IP has any kernel object, checking they come together.
func lbProgrammed(t *testing.T, e *env) bool {
	t.Helper()
	bound := e.bound()["203.0.113.7"]
	vs := e.hasVirtualServer(lbKey)
	entries := e.entries("KUBE-LOAD-BALANCER")[lbEntry] && e.entries("KUBE-LOAD-BALANCER-LOCAL")[lbEntry] && e.entries("KUBE-IPVS-IPS")["203.0.113.7"]
	if bound != vs || vs != entries {
		t.Errorf("LB IP half programmed: bound=%v vs=%v entries=%v", bound, vs, entries)
	}
	if !e.hasVirtualServer(lbNodePort) || !e.entries("KUBE-HEALTH-CHECK-NODE-PORT")["31000"] {
		t.Errorf("NodePort virtual server or health check node port missing")
	}
	return vs
}

func TestLBIngressUnboundByGlobalDefault(t *testing.T) {
	RegisterMetrics()
	e, _ := policyEnv(t, func(c *forkconfig.Config) { c.BindLoadBalancerIngress = false })
	svc := lbService("lb", "10.96.0.20")
	e.start(svc, fixture.Slice(svc, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.2.6", Node: fixture.Node}))
	if lbProgrammed(t, e) {
		t.Errorf("LB IP programmed with --ipvs-bind-lb-ingress=false")
	}
	if v, _ := testutil.GetGaugeMetricValue(lbIngressUnbound.WithLabelValues("IPv4")); v != 1 {
		t.Errorf("lb_ingress_unbound = %v, want 1", v)
	}

	// The annotation binds it back.
	bound := svc.DeepCopy()
	fixture.Annotate(desired.AnnotationBindLBIngress, "true")(bound)
	e.p.OnServiceUpdate(svc, bound)
	e.sync()
	if !lbProgrammed(t, e) {
		t.Errorf("annotation true did not bind the LB IP")
	}
	if v, _ := testutil.GetGaugeMetricValue(lbIngressUnbound.WithLabelValues("IPv4")); v != 0 {
		t.Errorf("lb_ingress_unbound = %v, want 0", v)
	}
}

func TestLBIngressAnnotations(t *testing.T) {
	e, _ := policyEnv(t, nil)
	unbound := lbService("lb", "10.96.0.20", fixture.Annotate(desired.AnnotationBindLBIngress, "false"))
	e.start(unbound)
	if lbProgrammed(t, e) {
		t.Errorf("annotation false: LB IP programmed")
	}
	// Removing the annotation brings back upstream's behaviour.
	plain := lbService("lb", "10.96.0.20")
	e.p.OnServiceUpdate(unbound, plain)
	e.sync()
	if !lbProgrammed(t, e) {
		t.Errorf("without the annotation the LB IP should be bound")
	}
	// ipMode Proxy: not programmed, as upstream; annotation true binds it.
	proxied := plain.DeepCopy()
	proxied.Status.LoadBalancer.Ingress[0].IPMode = ptr.To(v1.LoadBalancerIPModeProxy)
	e.p.OnServiceUpdate(plain, proxied)
	e.sync()
	if lbProgrammed(t, e) {
		t.Errorf("ipMode Proxy: LB IP programmed")
	}
	forced := proxied.DeepCopy()
	fixture.Annotate(desired.AnnotationBindLBIngress, "true")(forced)
	e.p.OnServiceUpdate(proxied, forced)
	e.sync()
	if !lbProgrammed(t, e) {
		t.Errorf("annotation true should bind an ipMode Proxy LB IP")
	}
}

func TestInvalidAnnotationEventOncePerChange(t *testing.T) {
	e, rec := policyEnv(t, nil)
	svc := lbService("lb", "10.96.0.20", fixture.Annotate(desired.AnnotationBindLBIngress, "yes"), func(s *v1.Service) {
		// Two ports: still one Event for the Service.
		s.Spec.Ports = append(s.Spec.Ports, v1.ServicePort{Name: "q", Port: 81, Protocol: v1.ProtocolTCP, NodePort: 30081})
	})
	e.start(svc)
	if !lbProgrammed(t, e) {
		t.Errorf("invalid annotation: the default (bind) should apply")
	}
	// Syncs of every kind, a no-op update and a node change that recomputes every port.
	e.sync()
	e.verifySync()
	touched := svc.DeepCopy()
	touched.ResourceVersion = "2"
	touched.Labels = map[string]string{"x": "y"}
	e.p.OnServiceUpdate(svc, touched)
	e.sync()
	e.p.OnNodeAddresses("node-c", []netip.Addr{fixture.Addr("192.168.0.12")})
	e.sync()
	// One port goes: the Service's decisions are the same.
	onePort := touched.DeepCopy()
	onePort.Spec.Ports = onePort.Spec.Ports[:1]
	e.p.OnServiceUpdate(touched, onePort)
	e.sync()
	touched = onePort
	evs := drain(rec)
	if len(evs) != 1 || !strings.Contains(evs[0], "InvalidAnnotation") || !strings.Contains(evs[0], `"yes"`) {
		t.Fatalf("events %q, want one InvalidAnnotation naming the value", evs)
	}
	// A new invalid value is a change: one more Event.
	changed := touched.DeepCopy()
	changed.Annotations[desired.AnnotationBindLBIngress] = "no"
	e.p.OnServiceUpdate(touched, changed)
	e.sync()
	e.sync()
	if evs := drain(rec); len(evs) != 1 || !strings.Contains(evs[0], `"no"`) {
		t.Errorf("after the change: events %q, want one naming the new value", evs)
	}
}

func TestExternalIPOfAnotherNodeRefusedUntilNodeDeleted(t *testing.T) {
	RegisterMetrics()
	e, rec := policyEnv(t, nil)
	e.p.OnNodeAddresses(fixture.Node, []netip.Addr{fixture.NodeIP4})
	e.p.OnNodeAddresses("node-b", []netip.Addr{fixture.Addr(nodeBAddr), fixture.Addr("fd00:1::11")})
	svc := fixture.Service("ext", "10.96.0.30", fixture.ExternalIPs(nodeBAddr))
	e.start(svc, fixture.Slice(svc, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.1.5", Node: "node-b"}))
	refused := func() bool {
		return !e.bound()[nodeBAddr] && !e.hasVirtualServer(nodeBKey) && !e.entries("KUBE-EXTERNAL-IP")[extIPEntry] && !e.entries("KUBE-IPVS-IPS")[nodeBAddr]
	}
	if !refused() {
		t.Fatalf("another node's address is programmed: bound %v", e.bound())
	}
	if !e.hasVirtualServer(fixture.Key("10.96.0.30", kipvs.TCP, 80)) {
		t.Errorf("the cluster IP should still be served")
	}
	if v, _ := testutil.GetGaugeMetricValue(refusedAddresses.WithLabelValues("IPv4", string(desired.ReasonNodeAddress))); v != 1 {
		t.Errorf("refused_addresses{node-address} = %v, want 1", v)
	}
	e.verifySync()
	e.p.OnNodeAddresses("node-b", []netip.Addr{fixture.Addr(nodeBAddr)}) // an IPv6 change only
	e.sync()
	evs := drain(rec)
	if len(evs) != 1 || !strings.Contains(evs[0], "AddressRefused") || !strings.Contains(evs[0], nodeBAddr) || !strings.Contains(evs[0], "node-b") {
		t.Errorf("events %q, want one AddressRefused naming the address and node-b", evs)
	}

	e.p.OnNodeDelete("node-b")
	e.sync()
	if !e.bound()[nodeBAddr] || !e.hasVirtualServer(nodeBKey) || !e.entries("KUBE-EXTERNAL-IP")[extIPEntry] {
		t.Errorf("after node-b is deleted the externalIP should be served as upstream: bound %v", e.bound())
	}
	if v, _ := testutil.GetGaugeMetricValue(refusedAddresses.WithLabelValues("IPv4", string(desired.ReasonNodeAddress))); v != 0 {
		t.Errorf("refused_addresses{node-address} = %v, want 0", v)
	}
	// The node comes back: refused again, and reported again.
	e.p.OnNodeAddresses("node-b", []netip.Addr{fixture.Addr(nodeBAddr)})
	e.sync()
	if !refused() {
		t.Errorf("node-b is back: its address should be refused again")
	}
	if evs := drain(rec); len(evs) != 1 {
		t.Errorf("events %q, want one", evs)
	}
	// The Service goes: nothing is refused any more.
	e.p.OnServiceDelete(svc)
	e.sync()
	if v, _ := testutil.GetGaugeMetricValue(refusedAddresses.WithLabelValues("IPv4", string(desired.ReasonNodeAddress))); v != 0 {
		t.Errorf("refused_addresses{node-address} = %v after the Service is deleted, want 0", v)
	}
}

func TestAPIServerEndpointNeverCaptured(t *testing.T) {
	e, rec := policyEnv(t, nil)
	e.p.OnAPIServerEndpoints([]netip.AddrPort{apiEndpoint, netip.MustParseAddrPort("172.16.0.1:443")})
	// This node's address, on the apiserver's port and on another.
	svc := fixture.Service("grab", "10.96.0.40", fixture.ExternalIPs("192.168.0.10", "172.16.0.1"), func(s *v1.Service) {
		s.Spec.Ports[0].Port = 6443
		s.Spec.Ports = append(s.Spec.Ports, v1.ServicePort{Name: "other", Port: 8888, Protocol: v1.ProtocolTCP})
	})
	lb := fixture.Service("lbgrab", "10.96.0.41", fixture.LoadBalancer(30090, v1.LoadBalancerIngress{IP: "192.168.0.10"}), func(s *v1.Service) { s.Spec.Ports[0].Port = 6443 })
	e.start(svc, lb)
	if e.hasVirtualServer(fixture.Key("192.168.0.10", kipvs.TCP, 6443)) {
		t.Errorf("the apiserver endpoint 192.168.0.10:6443 is captured by a virtual server")
	}
	if e.entries("KUBE-EXTERNAL-IP")["192.168.0.10,tcp:6443"] || e.entries("KUBE-LOAD-BALANCER")["192.168.0.10,tcp:6443"] {
		t.Errorf("ipset entries for the apiserver endpoint")
	}
	if !e.hasVirtualServer(fixture.Key("192.168.0.10", kipvs.TCP, 8888)) || e.bound()["192.168.0.10"] {
		t.Errorf("this node's address on port 8888 should be served unbound, as upstream")
	}
	if e.hasVirtualServer(fixture.Key("172.16.0.1", kipvs.TCP, 8888)) || e.bound()["172.16.0.1"] {
		t.Errorf("an apiserver address elsewhere should be refused on every port")
	}
	// One event per Service and address (the 8888 port refuses 172.16.0.1 too: same event).
	evs := drain(rec)
	if len(evs) != 3 {
		t.Errorf("events %q, want 3: grab 192.168.0.10:6443, grab 172.16.0.1, lbgrab 192.168.0.10:6443", evs)
	}
	// The apiserver moves away: served again.
	e.p.OnAPIServerEndpoints(nil)
	e.sync()
	if !e.hasVirtualServer(fixture.Key("192.168.0.10", kipvs.TCP, 6443)) || !e.bound()["172.16.0.1"] {
		t.Errorf("without apiserver endpoints the addresses should be served as upstream")
	}
}

func TestProtectedAndAllowedCIDRs(t *testing.T) {
	e, _ := policyEnv(t, func(c *forkconfig.Config) {
		c.ProtectedCIDRs = []string{"10.10.0.0/24", "fd00:10::/64"}
		c.ExternalIPCIDRs = []string{"198.51.100.0/24"}
	})
	svc := fixture.Service("ext", "10.96.0.50", fixture.ExternalIPs("10.10.0.5", "198.51.100.1", "203.0.113.1"),
		fixture.LoadBalancer(30050, v1.LoadBalancerIngress{IP: "10.10.0.6"}, v1.LoadBalancerIngress{IP: "203.0.113.2"}))
	e.start(svc)
	got := e.bound()
	for ip, want := range map[string]bool{"10.10.0.5": false, "198.51.100.1": true, "203.0.113.1": false, "10.10.0.6": false, "203.0.113.2": true} {
		if got[ip] != want || e.hasVirtualServer(fixture.Key(ip, kipvs.TCP, 80)) != want {
			t.Errorf("%s: bound=%v vs=%v, want %v", ip, got[ip], e.hasVirtualServer(fixture.Key(ip, kipvs.TCP, 80)), want)
		}
	}
}

func TestDualStackProxierForwardsClusterAddresses(t *testing.T) {
	p4 := &Proxier{family: v1.IPv4Protocol, intake: newClusterIntake(v1.IPv4Protocol, fixture.Node)}
	p6 := &Proxier{family: v1.IPv6Protocol, intake: newClusterIntake(v1.IPv6Protocol, fixture.Node)}
	d := newDualStackProxier(p4, p6)
	var h ClusterAddressHandler = d
	h.OnNodeAddresses("node-b", []netip.Addr{fixture.Addr("192.168.0.11"), fixture.Addr("fd00:1::11")})
	h.OnAPIServerEndpoints([]netip.AddrPort{apiEndpoint, netip.MustParseAddrPort("[fd00:1::10]:6443")})
	v4, v6 := p4.intake.take().view, p6.intake.take().view
	if v4 == nil || v6 == nil {
		t.Fatalf("a cluster address change must reach the next sync")
	}
	if v4.otherNodes[fixture.Addr("192.168.0.11")] != "node-b" || v6.otherNodes[fixture.Addr("fd00:1::11")] != "node-b" {
		t.Errorf("node addresses not given to both families: %v %v", v4.otherNodes, v6.otherNodes)
	}
	if _, ok := v4.otherNodes[fixture.Addr("fd00:1::11")]; ok {
		t.Errorf("the IPv4 proxier holds an IPv6 address")
	}
	if !v4.apiEndpoints[apiEndpoint] || !v6.apiEndpoints[netip.MustParseAddrPort("[fd00:1::10]:6443")] || len(v4.apiEndpoints) != 1 {
		t.Errorf("apiserver endpoints: %v %v", v4.apiEndpoints, v6.apiEndpoints)
	}
	h.OnNodeDelete("node-b")
	v4, v6 = p4.intake.take().view, p6.intake.take().view
	if v4 == nil || v6 == nil {
		t.Fatalf("node-b's deletion must reach the next sync")
	}
	if len(v4.otherNodes)+len(v6.otherNodes) != 0 {
		t.Errorf("node-b not forgotten")
	}
}

// TestClusterIPTakeoverRefused: a Service in a namespace that sorts before "default" names the
// kubernetes Service's cluster IP (or any address in a service CIDR) as an externalIP or LB
// ingress IP. The apiserver's virtual server keeps its own real servers; the thief's address
// gets nothing, with an Event and the refusal gauge.
func TestClusterIPTakeoverRefused(t *testing.T) {
	RegisterMetrics()
	e, rec := policyEnv(t, nil)
	kubernetes := fixture.Service("kubernetes", "10.96.0.1", func(s *v1.Service) {
		s.Namespace = "default"
		s.Spec.Ports[0].Port = 443
	})
	thief := fixture.Service("thief", "10.96.0.99", fixture.ExternalIPs("10.96.0.1", "10.96.200.200"), func(s *v1.Service) {
		s.Namespace = "aaa"
		s.Spec.Ports[0].Port = 443
	})
	lbThief := fixture.Service("lbthief", "10.96.0.98", fixture.LoadBalancer(30443, v1.LoadBalancerIngress{IP: "10.96.0.1"}), func(s *v1.Service) {
		s.Namespace = "aaa"
		s.Spec.Ports[0].Port = 443
	})
	e.p.OnServiceCIDRsChanged([]string{"10.96.0.0/16", "fd00:96::/112"})
	e.start(kubernetes, fixture.Slice(kubernetes, v1.IPv4Protocol, fixture.Endpoint{IP: "192.168.0.10", Node: fixture.Node}),
		thief, fixture.Slice(thief, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.9.9", Node: "node-b"}),
		lbThief, fixture.Slice(lbThief, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.9.8", Node: "node-b"}))
	k := fixture.Key("10.96.0.1", kipvs.TCP, 443)
	if got := e.realServers(k); len(got) != 1 || got["192.168.0.10:8080"] != 1 {
		t.Errorf("the apiserver's virtual server has real servers %v, want only the apiserver", got)
	}
	if e.entries("KUBE-EXTERNAL-IP")["10.96.0.1,tcp:443"] || e.entries("KUBE-LOAD-BALANCER")["10.96.0.1,tcp:443"] {
		t.Errorf("ipset entries for the stolen cluster IP")
	}
	if e.hasVirtualServer(fixture.Key("10.96.200.200", kipvs.TCP, 443)) || e.bound()["10.96.200.200"] {
		t.Errorf("an unallocated address of the service CIDR is served as an externalIP")
	}
	evs := strings.Join(drain(rec), "\n")
	for _, want := range []string{"10.96.0.1", "cluster IP", "10.96.200.200", "service CIDR 10.96.0.0/16"} {
		if !strings.Contains(evs, want) {
			t.Errorf("events do not mention %q:\n%s", want, evs)
		}
	}
	if v, _ := testutil.GetGaugeMetricValue(refusedAddresses.WithLabelValues("IPv4", string(desired.ReasonClusterIP))); v != 2 {
		t.Errorf("refused_addresses{cluster-ip} = %v, want 2 (thief and lbthief)", v)
	}

	// The kubernetes Service goes away and its cluster IP with it: the address is still in the
	// service CIDR, so still refused. With no service CIDR known, it is served as upstream.
	e.p.OnServiceDelete(kubernetes)
	e.sync()
	if e.hasVirtualServer(k) {
		t.Errorf("the service CIDR no longer guards 10.96.0.1 once its Service is gone")
	}
	e.p.OnServiceCIDRsChanged(nil)
	e.sync()
	if !e.hasVirtualServer(k) || !e.bound()["10.96.200.200"] {
		t.Errorf("without a cluster IP or service CIDR there, the externalIPs should be served as upstream")
	}
	// The cluster IP comes back (a new kubernetes Service): refused again at once, with no
	// change to the thief.
	e.p.OnServiceAdd(kubernetes)
	e.sync()
	if got := e.realServers(k); len(got) != 1 || got["192.168.0.10:8080"] != 1 {
		t.Errorf("after the cluster IP is allocated again its virtual server has real servers %v, want only the apiserver", got)
	}
	if e.entries("KUBE-EXTERNAL-IP")["10.96.0.1,tcp:443"] {
		t.Errorf("the thief's externalIP entry stays after the address became a cluster IP")
	}
}
