package desired

import (
	"net/netip"
	"reflect"
	"testing"

	v1 "k8s.io/api/core/v1"
	proxyutil "k8s.io/kubernetes/pkg/proxy/util"
	"k8s.io/utils/ptr"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/objects"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/internal/fixture"
)

func TestClusterIP(t *testing.T) {
	svc := fixture.Service("web", "10.96.0.10")
	in := only(t, v1.IPv4Protocol, svc, fixture.Slice(svc, v1.IPv4Protocol,
		fixture.Endpoint{IP: "10.244.1.5", Node: "node-b"},
		fixture.Endpoint{IP: "10.244.2.6", Node: "node-c"},
	))
	checkState(t, DesiredServicePort(ctx4(), in), ServicePortState{
		VirtualServers: []VirtualServerState{{
			VirtualServer: fixture.VS("10.96.0.10", objects.TCP, 80),
			RealServers:   fixture.RS("10.244.1.5", "10.244.2.6"),
		}},
		Bindings: []netip.Addr{fixture.Addr("10.96.0.10")},
		SetEntries: map[string][]string{
			"KUBE-CLUSTER-IP": {"10.96.0.10,tcp:80"},
			"KUBE-IPVS-IPS":   {"10.96.0.10"},
		},
	})
}

func TestClusterIPWithoutEndpointsKeepsVirtualServer(t *testing.T) {
	svc := fixture.Service("web", "10.96.0.10")
	st := DesiredServicePort(ctx4(), only(t, v1.IPv4Protocol, svc))
	if len(st.VirtualServers) != 1 || len(st.VirtualServers[0].RealServers) != 0 {
		t.Errorf("want one virtual server without real servers:%s", dump(st))
	}
}

func TestLoopBackEntriesForEveryLocalEndpoint(t *testing.T) {
	svc := fixture.Service("web", "10.96.0.10")
	in := only(t, v1.IPv4Protocol, svc, fixture.Slice(svc, v1.IPv4Protocol,
		fixture.Endpoint{IP: "10.244.0.5", Node: fixture.Node},
		fixture.Endpoint{IP: "10.244.0.6", Node: fixture.Node, NotReady: true, NoServ: true}, // readiness is not asked
		fixture.Endpoint{IP: "10.244.1.7", Node: "node-b"},
	))
	got := DesiredServicePort(ctx4(), in).SetEntries["KUBE-LOOP-BACK"]
	want := []string{"10.244.0.5,tcp:8080,10.244.0.5", "10.244.0.6,tcp:8080,10.244.0.6"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("KUBE-LOOP-BACK = %v, want %v", got, want)
	}
}

func TestServicePortWithoutClusterIPInFamilyGetsOnlyLoopBack(t *testing.T) {
	// Not reachable through the trackers (they drop such services); upstream adds hairpin
	// entries before it refuses the cluster IP, and so do we.
	svc := fixture.Service("web", "10.96.0.10")
	in := only(t, v1.IPv4Protocol, svc, fixture.Slice(svc, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.0.5", Node: fixture.Node}))
	ctx := ctx6()
	in.Endpoints = inputs(t, v1.IPv6Protocol, fixture.Service("web", "fd00:96::10"),
		fixture.Slice(svc, v1.IPv6Protocol, fixture.Endpoint{IP: "fd00:244::5", Node: fixture.Node}))[0].Endpoints
	checkState(t, DesiredServicePort(ctx, in), ServicePortState{SetEntries: map[string][]string{
		"KUBE-6-LOOP-BACK": {"fd00:244::5,tcp:8080,fd00:244::5"},
	}})
}

func TestNodePortOnEveryNodePortAddress(t *testing.T) {
	svc := fixture.Service("web", "10.96.0.10", fixture.NodePort(30080))
	in := only(t, v1.IPv4Protocol, svc, fixture.Slice(svc, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.1.5", Node: "node-b"}))
	checkState(t, DesiredServicePort(ctx4(), in), ServicePortState{
		VirtualServers: []VirtualServerState{
			{VirtualServer: fixture.VS("10.96.0.10", objects.TCP, 80), RealServers: fixture.RS("10.244.1.5")},
			{VirtualServer: fixture.VS("10.0.0.10", objects.TCP, 30080), RealServers: fixture.RS("10.244.1.5")},
			{VirtualServer: fixture.VS("192.168.0.10", objects.TCP, 30080), RealServers: fixture.RS("10.244.1.5")},
		},
		Bindings: []netip.Addr{fixture.Addr("10.96.0.10")},
		SetEntries: map[string][]string{
			"KUBE-CLUSTER-IP":    {"10.96.0.10,tcp:80"},
			"KUBE-IPVS-IPS":      {"10.96.0.10"},
			"KUBE-NODE-PORT-TCP": {"30080"},
		},
	})
}

func TestNodePortSetsPerProtocol(t *testing.T) {
	for _, tc := range []struct {
		proto             v1.Protocol
		local             bool
		wantSet           string
		wantLocalSet      string
		wantEntriesPerSet []string
	}{
		{v1.ProtocolTCP, false, "KUBE-NODE-PORT-TCP", "", []string{"30080"}},
		{v1.ProtocolTCP, true, "KUBE-NODE-PORT-TCP", "KUBE-NODE-PORT-LOCAL-TCP", []string{"30080"}},
		{v1.ProtocolUDP, false, "KUBE-NODE-PORT-UDP", "", []string{"30080"}},
		{v1.ProtocolUDP, true, "KUBE-NODE-PORT-UDP", "KUBE-NODE-PORT-LOCAL-UDP", []string{"30080"}},
	} {
		t.Run(string(tc.proto)+map[bool]string{true: "-local", false: ""}[tc.local], func(t *testing.T) {
			opts := []func(*v1.Service){fixture.NodePort(30080), fixture.Protocol(tc.proto)}
			if tc.local {
				opts = append(opts, fixture.ExternalLocal(0))
			}
			svc := fixture.Service("web", "10.96.0.10", opts...)
			st := DesiredServicePort(ctx4(), only(t, v1.IPv4Protocol, svc))
			if got := st.SetEntries[tc.wantSet]; !reflect.DeepEqual(got, tc.wantEntriesPerSet) {
				t.Errorf("%s = %v, want %v", tc.wantSet, got, tc.wantEntriesPerSet)
			}
			for _, other := range []string{"KUBE-NODE-PORT-LOCAL-TCP", "KUBE-NODE-PORT-LOCAL-UDP"} {
				got := st.SetEntries[other]
				if other == tc.wantLocalSet {
					if !reflect.DeepEqual(got, tc.wantEntriesPerSet) {
						t.Errorf("%s = %v, want %v", other, got, tc.wantEntriesPerSet)
					}
				} else if len(got) != 0 {
					t.Errorf("%s = %v, want nothing", other, got)
				}
			}
		})
	}
}

func TestSCTPNodePortUsesHashSet(t *testing.T) {
	svc := fixture.Service("web", "10.96.0.10", fixture.NodePort(30080), fixture.Protocol(v1.ProtocolSCTP), fixture.ExternalLocal(0))
	st := DesiredServicePort(ctx4(), only(t, v1.IPv4Protocol, svc))
	want := []string{"10.0.0.10,sctp:30080", "192.168.0.10,sctp:30080"}
	for _, set := range []string{"KUBE-NODE-PORT-SCTP-HASH", "KUBE-NODE-PORT-LOCAL-SCTP-HASH"} {
		if got := st.SetEntries[set]; !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %v, want %v", set, got, want)
		}
	}
	if got := st.SetEntries["KUBE-CLUSTER-IP"]; !reflect.DeepEqual(got, []string{"10.96.0.10,sctp:80"}) {
		t.Errorf("KUBE-CLUSTER-IP = %v", got)
	}
	realServersOf(t, st, fixture.Key("192.168.0.10", objects.SCTP, 30080))
}

func TestNodePortWithoutNodeAddressesSkipsTheRest(t *testing.T) {
	// Upstream gives up on the port when it has no node address, health check port included.
	svc := fixture.Service("web", "10.96.0.10",
		fixture.LoadBalancer(30080, v1.LoadBalancerIngress{IP: "203.0.113.7"}), fixture.ExternalLocal(31000))
	ctx := ctx4()
	ctx.NodePortAddresses = nil
	st := DesiredServicePort(ctx, only(t, v1.IPv4Protocol, svc))
	if len(st.VirtualServers) != 2 {
		t.Errorf("want cluster IP and load balancer virtual servers only:%s", dump(st))
	}
	for _, set := range []string{"KUBE-NODE-PORT-TCP", "KUBE-NODE-PORT-LOCAL-TCP", "KUBE-HEALTH-CHECK-NODE-PORT"} {
		if len(st.SetEntries[set]) != 0 {
			t.Errorf("%s = %v, want nothing", set, st.SetEntries[set])
		}
	}
}

func TestHealthCheckNodePort(t *testing.T) {
	svc := fixture.Service("web", "10.96.0.10",
		fixture.LoadBalancer(30080, v1.LoadBalancerIngress{IP: "203.0.113.7"}), fixture.ExternalLocal(31000))
	st := DesiredServicePort(ctx4(), only(t, v1.IPv4Protocol, svc))
	if got := st.SetEntries["KUBE-HEALTH-CHECK-NODE-PORT"]; !reflect.DeepEqual(got, []string{"31000"}) {
		t.Errorf("KUBE-HEALTH-CHECK-NODE-PORT = %v", got)
	}
}

func TestExternalIPBoundUnlessLocalAddress(t *testing.T) {
	svc := fixture.Service("web", "10.96.0.10", fixture.ExternalIPs("198.51.100.1", "192.168.0.10", "fd00::1"))
	checkState(t, DesiredServicePort(ctx4(), only(t, v1.IPv4Protocol, svc)), ServicePortState{
		VirtualServers: []VirtualServerState{
			{VirtualServer: fixture.VS("10.96.0.10", objects.TCP, 80), RealServers: fixture.RS()},
			{VirtualServer: fixture.VS("198.51.100.1", objects.TCP, 80), RealServers: fixture.RS()},
			{VirtualServer: fixture.VS("192.168.0.10", objects.TCP, 80), RealServers: fixture.RS()},
		},
		// 192.168.0.10 is the node's own address: not bound to kube-ipvs0.
		Bindings: []netip.Addr{fixture.Addr("10.96.0.10"), fixture.Addr("198.51.100.1")},
		SetEntries: map[string][]string{
			"KUBE-CLUSTER-IP":  {"10.96.0.10,tcp:80"},
			"KUBE-EXTERNAL-IP": {"198.51.100.1,tcp:80", "192.168.0.10,tcp:80"},
			"KUBE-IPVS-IPS":    {"10.96.0.10", "198.51.100.1"},
		},
	})
}

func TestExternalTrafficPolicyLocalUsesLocalEndpoints(t *testing.T) {
	svc := fixture.Service("web", "10.96.0.10", fixture.ExternalIPs("198.51.100.1"),
		fixture.LoadBalancer(30080, v1.LoadBalancerIngress{IP: "203.0.113.7"}), fixture.ExternalLocal(31000))
	in := only(t, v1.IPv4Protocol, svc, fixture.Slice(svc, v1.IPv4Protocol,
		fixture.Endpoint{IP: "10.244.0.5", Node: fixture.Node},
		fixture.Endpoint{IP: "10.244.1.5", Node: "node-b"},
	))
	st := DesiredServicePort(ctx4(), in)
	// The cluster IP follows the internal policy (Cluster): every endpoint.
	if got := realServersOf(t, st, fixture.Key("10.96.0.10", objects.TCP, 80)); !reflect.DeepEqual(got, fixture.RS("10.244.0.5", "10.244.1.5")) {
		t.Errorf("cluster IP real servers = %v", got)
	}
	for _, k := range []objects.Key{
		fixture.Key("198.51.100.1", objects.TCP, 80),
		fixture.Key("203.0.113.7", objects.TCP, 80),
		fixture.Key("192.168.0.10", objects.TCP, 30080),
		fixture.Key("10.0.0.10", objects.TCP, 30080),
	} {
		if got := realServersOf(t, st, k); !reflect.DeepEqual(got, fixture.RS("10.244.0.5")) {
			t.Errorf("%s real servers = %v, want the local endpoint only", k, got)
		}
	}
	for set, want := range map[string][]string{
		"KUBE-EXTERNAL-IP-LOCAL":   {"198.51.100.1,tcp:80"},
		"KUBE-EXTERNAL-IP":         nil,
		"KUBE-LOAD-BALANCER":       {"203.0.113.7,tcp:80"},
		"KUBE-LOAD-BALANCER-LOCAL": {"203.0.113.7,tcp:80"},
		"KUBE-NODE-PORT-LOCAL-TCP": {"30080"},
		"KUBE-NODE-PORT-TCP":       {"30080"},
	} {
		if got := st.SetEntries[set]; !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %v, want %v", set, got, want)
		}
	}
}

func TestExternalTrafficPolicyLocalFallsBackToClusterEndpoints(t *testing.T) {
	// Without a local endpoint upstream still programs the cluster endpoints, so that pods on
	// this node reach the service through its node port (kubernetes#97081).
	svc := fixture.Service("web", "10.96.0.10", fixture.NodePort(30080), fixture.ExternalLocal(31000))
	in := only(t, v1.IPv4Protocol, svc, fixture.Slice(svc, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.1.5", Node: "node-b"}))
	st := DesiredServicePort(ctx4(), in)
	if got := realServersOf(t, st, fixture.Key("192.168.0.10", objects.TCP, 30080)); !reflect.DeepEqual(got, fixture.RS("10.244.1.5")) {
		t.Errorf("node port real servers = %v", got)
	}
}

func TestInternalTrafficPolicyLocal(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []func(*v1.Service)
		eps  []fixture.Endpoint
		want []objects.RealServer
	}{{
		name: "local endpoints only",
		eps:  []fixture.Endpoint{{IP: "10.244.0.5", Node: fixture.Node}, {IP: "10.244.1.5", Node: "node-b"}},
		want: fixture.RS("10.244.0.5"),
	}, {
		// Not externally accessible: no cluster endpoints are computed, nothing to fall back to.
		name: "no local endpoint, cluster IP only",
		eps:  []fixture.Endpoint{{IP: "10.244.1.5", Node: "node-b"}},
		want: fixture.RS(),
	}, {
		// Externally accessible: upstream falls back to the cluster endpoints even for the
		// cluster IP, unlike the iptables and nftables proxiers.
		name: "no local endpoint, node port service",
		opts: []func(*v1.Service){fixture.NodePort(30080)},
		eps:  []fixture.Endpoint{{IP: "10.244.1.5", Node: "node-b"}},
		want: fixture.RS("10.244.1.5"),
	}} {
		t.Run(tc.name, func(t *testing.T) {
			svc := fixture.Service("web", "10.96.0.10", append(tc.opts, fixture.InternalLocal)...)
			in := only(t, v1.IPv4Protocol, svc, fixture.Slice(svc, v1.IPv4Protocol, tc.eps...))
			got := realServersOf(t, DesiredServicePort(ctx4(), in), fixture.Key("10.96.0.10", objects.TCP, 80))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("cluster IP real servers = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestLoadBalancer(t *testing.T) {
	svc := fixture.Service("web", "10.96.0.10", fixture.LoadBalancer(30080,
		v1.LoadBalancerIngress{IP: "203.0.113.7"},
		v1.LoadBalancerIngress{IP: "192.168.0.10"}, // a VIP the node holds: not bound
		v1.LoadBalancerIngress{Hostname: "lb.example.com"},
	))
	st := DesiredServicePort(ctx4(), only(t, v1.IPv4Protocol, svc))
	if want := []netip.Addr{fixture.Addr("10.96.0.10"), fixture.Addr("203.0.113.7")}; !reflect.DeepEqual(st.Bindings, want) {
		t.Errorf("bindings = %v, want %v", st.Bindings, want)
	}
	if got, want := st.SetEntries["KUBE-LOAD-BALANCER"], []string{"203.0.113.7,tcp:80", "192.168.0.10,tcp:80"}; !reflect.DeepEqual(got, want) {
		t.Errorf("KUBE-LOAD-BALANCER = %v, want %v", got, want)
	}
	realServersOf(t, st, fixture.Key("203.0.113.7", objects.TCP, 80))
	realServersOf(t, st, fixture.Key("192.168.0.10", objects.TCP, 80))
}

func TestLoadBalancerIPModeProxyGetsNothing(t *testing.T) {
	svc := fixture.Service("web", "10.96.0.10", fixture.LoadBalancer(30080,
		v1.LoadBalancerIngress{IP: "203.0.113.7", IPMode: ptr.To(v1.LoadBalancerIPModeProxy)},
	), func(s *v1.Service) { s.Spec.LoadBalancerSourceRanges = []string{"198.51.100.0/24"} })
	st := DesiredServicePort(ctx4(), only(t, v1.IPv4Protocol, svc))
	for _, v := range st.VirtualServers {
		if v.VirtualServer.Address == fixture.Addr("203.0.113.7") {
			t.Errorf("ipMode Proxy VIP has a virtual server")
		}
	}
	for name, entries := range st.SetEntries {
		for _, e := range entries {
			if len(e) >= 11 && e[:11] == "203.0.113.7" {
				t.Errorf("ipMode Proxy VIP in %s: %s", name, e)
			}
		}
	}
	if b := NodeBlockedLoadBalancers(ctx4(), only(t, v1.IPv4Protocol, svc)); len(b) != 0 {
		t.Errorf("blocked = %v", b)
	}
}

func TestLoadBalancerSourceRanges(t *testing.T) {
	lb := fixture.LoadBalancer(30080, v1.LoadBalancerIngress{IP: "203.0.113.7"})
	for _, tc := range []struct {
		name        string
		ranges      []string
		wantCIDR    []string
		wantSrcIP   []string
		wantBlocked []objects.Key
		wantNoFW    bool
	}{{
		name:        "node not covered: blocked from the node",
		ranges:      []string{"198.51.100.0/24", " 198.51.100.99/32 ", "fd00::/64"},
		wantCIDR:    []string{"203.0.113.7,tcp:80,198.51.100.0/24", "203.0.113.7,tcp:80,198.51.100.99"},
		wantBlocked: []objects.Key{fixture.Key("203.0.113.7", objects.TCP, 80)},
	}, {
		name:      "node covered: VIP-sourced traffic allowed",
		ranges:    []string{"192.168.0.0/16"},
		wantCIDR:  []string{"203.0.113.7,tcp:80,192.168.0.0/16"},
		wantSrcIP: []string{"203.0.113.7,tcp:80,203.0.113.7"},
	}, {
		name:     "zero CIDR means no firewall",
		ranges:   []string{"198.51.100.0/24", "0.0.0.0/0"},
		wantNoFW: true,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			svc := fixture.Service("web", "10.96.0.10", lb, func(s *v1.Service) { s.Spec.LoadBalancerSourceRanges = tc.ranges })
			in := only(t, v1.IPv4Protocol, svc)
			st := DesiredServicePort(ctx4(), in)
			wantFW := []string{"203.0.113.7,tcp:80"}
			if tc.wantNoFW {
				wantFW = nil
			}
			for set, want := range map[string][]string{
				"KUBE-LOAD-BALANCER-FW":          wantFW,
				"KUBE-LOAD-BALANCER-SOURCE-CIDR": tc.wantCIDR,
				"KUBE-LOAD-BALANCER-SOURCE-IP":   tc.wantSrcIP,
			} {
				if got := st.SetEntries[set]; !reflect.DeepEqual(got, want) {
					t.Errorf("%s = %v, want %v", set, got, want)
				}
			}
			if got := NodeBlockedLoadBalancers(ctx4(), in); !reflect.DeepEqual(got, tc.wantBlocked) {
				t.Errorf("blocked = %v, want %v", got, tc.wantBlocked)
			}
		})
	}
}

func TestSessionAffinityPersistentTimeout(t *testing.T) {
	svc := fixture.Service("web", "10.96.0.10", fixture.NodePort(30080), func(s *v1.Service) {
		s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](600)}}
	})
	st := DesiredServicePort(ctx4(), only(t, v1.IPv4Protocol, svc))
	for _, v := range st.VirtualServers {
		if v.VirtualServer.Flags != objects.FlagPersistent || v.VirtualServer.Timeout != 600 {
			t.Errorf("%s flags %#x timeout %d, want persistent 600", v.VirtualServer.Key, v.VirtualServer.Flags, v.VirtualServer.Timeout)
		}
	}
}

func TestSchedulerMHFlags(t *testing.T) {
	for _, tc := range []struct {
		scheduler string
		want      string
		wantFlags objects.Flags
	}{
		{"", "rr", 0},
		{"wlc", "wlc", 0},
		{"mh", "mh", objects.FlagSchedSH2},
	} {
		ctx := ctx4()
		ctx.Scheduler = tc.scheduler
		st := DesiredServicePort(ctx, only(t, v1.IPv4Protocol, fixture.Service("web", "10.96.0.10")))
		got := st.VirtualServers[0].VirtualServer
		if got.Scheduler != tc.want || got.Flags != tc.wantFlags {
			t.Errorf("scheduler %q: got %q %#x, want %q %#x", tc.scheduler, got.Scheduler, got.Flags, tc.want, tc.wantFlags)
		}
	}
}

func TestTerminatingEndpoints(t *testing.T) {
	for _, tc := range []struct {
		name string
		eps  []fixture.Endpoint
		want []objects.RealServer
	}{{
		name: "ready endpoints win over terminating ones",
		eps: []fixture.Endpoint{
			{IP: "10.244.1.5", Node: "node-b"},
			{IP: "10.244.1.6", Node: "node-b", NotReady: true, Terminating: true},
		},
		want: fixture.RS("10.244.1.5"),
	}, {
		name: "serving terminating endpoints when none is ready",
		eps: []fixture.Endpoint{
			{IP: "10.244.1.6", Node: "node-b", NotReady: true, Terminating: true},
			{IP: "10.244.1.7", Node: "node-b", NotReady: true, Terminating: true, NoServ: true},
			{IP: "10.244.1.8", Node: "node-b", NotReady: true},
		},
		want: fixture.RS("10.244.1.6"),
	}} {
		t.Run(tc.name, func(t *testing.T) {
			svc := fixture.Service("web", "10.96.0.10")
			in := only(t, v1.IPv4Protocol, svc, fixture.Slice(svc, v1.IPv4Protocol, tc.eps...))
			got := realServersOf(t, DesiredServicePort(ctx4(), in), fixture.Key("10.96.0.10", objects.TCP, 80))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("real servers = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTopologyHints(t *testing.T) {
	svc := fixture.Service("web", "10.96.0.10")
	eps := []fixture.Endpoint{
		{IP: "10.244.1.5", Node: "node-b", Zones: []string{"zone-a"}},
		{IP: "10.244.2.5", Node: "node-c", Zones: []string{"zone-b"}},
	}
	in := only(t, v1.IPv4Protocol, svc, fixture.Slice(svc, v1.IPv4Protocol, eps...))
	ctx := ctx4()
	ctx.TopologyLabels = map[string]string{v1.LabelTopologyZone: "zone-a"}
	if got := realServersOf(t, DesiredServicePort(ctx, in), fixture.Key("10.96.0.10", objects.TCP, 80)); !reflect.DeepEqual(got, fixture.RS("10.244.1.5")) {
		t.Errorf("zone-a real servers = %v", got)
	}
	// A zone no endpoint is hinted for ignores the hints.
	ctx.TopologyLabels = map[string]string{v1.LabelTopologyZone: "zone-z"}
	if got := realServersOf(t, DesiredServicePort(ctx, in), fixture.Key("10.96.0.10", objects.TCP, 80)); !reflect.DeepEqual(got, fixture.RS("10.244.1.5", "10.244.2.5")) {
		t.Errorf("zone-z real servers = %v", got)
	}
	// Node hints (PreferSameNode) take precedence when every endpoint has one.
	eps[0].Nodes, eps[1].Nodes = []string{"node-b"}, []string{fixture.Node}
	in = only(t, v1.IPv4Protocol, svc, fixture.Slice(svc, v1.IPv4Protocol, eps...))
	ctx.TopologyLabels = map[string]string{v1.LabelTopologyZone: "zone-a"}
	if got := realServersOf(t, DesiredServicePort(ctx, in), fixture.Key("10.96.0.10", objects.TCP, 80)); !reflect.DeepEqual(got, fixture.RS("10.244.2.5")) {
		t.Errorf("node-hinted real servers = %v", got)
	}
}

func TestDualStackOnlyFamilyAddresses(t *testing.T) {
	svc := fixture.Service("web", "10.96.0.10", fixture.NodePort(30080), fixture.ExternalIPs("198.51.100.1", "2001:db8::1"),
		func(s *v1.Service) {
			s.Spec.ClusterIPs = []string{"10.96.0.10", "fd00:96::a"}
			s.Spec.IPFamilies = []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol}
			s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "203.0.113.7"}, {IP: "2001:db8::7"}}
		})
	in := only(t, v1.IPv6Protocol, svc,
		fixture.Slice(svc, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.1.5", Node: "node-b"}),
		fixture.Slice(svc, v1.IPv6Protocol, fixture.Endpoint{IP: "fd00:244:0:0::5", Node: "node-b"}))
	ctx := ctx6()
	ctx.NodePortAddresses = append(ctx.NodePortAddresses, fixture.NodeIP4) // a v4 address must be ignored
	checkState(t, DesiredServicePort(ctx, in), ServicePortState{
		VirtualServers: []VirtualServerState{
			{VirtualServer: fixture.VS("fd00:96::a", objects.TCP, 80), RealServers: fixture.RS("fd00:244::5")},
			{VirtualServer: fixture.VS("2001:db8::1", objects.TCP, 80), RealServers: fixture.RS("fd00:244::5")},
			{VirtualServer: fixture.VS("2001:db8::7", objects.TCP, 80), RealServers: fixture.RS("fd00:244::5")},
			{VirtualServer: fixture.VS("fd00:1::10", objects.TCP, 30080), RealServers: fixture.RS("fd00:244::5")},
		},
		Bindings: []netip.Addr{fixture.Addr("fd00:96::a"), fixture.Addr("2001:db8::1"), fixture.Addr("2001:db8::7")},
		SetEntries: map[string][]string{
			"KUBE-6-CLUSTER-IP":    {"fd00:96::a,tcp:80"},
			"KUBE-6-EXTERNAL-IP":   {"2001:db8::1,tcp:80"},
			"KUBE-6-LOAD-BALANCER": {"2001:db8::7,tcp:80"},
			"KUBE-6-NODE-PORT-TCP": {"30080"},
			"KUBE-6-IPVS-IPS":      {"fd00:96::a", "2001:db8::1", "2001:db8::7"},
		},
	})
}

func TestExcludeCIDRs(t *testing.T) {
	// Upstream creates virtual servers inside --ipvs-exclude-cidrs when a service asks for
	// them; the CIDRs only protect foreign virtual servers from its cleanup.
	exclude := []netip.Prefix{netip.MustParsePrefix("10.96.0.0/24")}
	st := DesiredServicePort(ctx4(), only(t, v1.IPv4Protocol, fixture.Service("web", "10.96.0.10")))
	realServersOf(t, st, fixture.Key("10.96.0.10", objects.TCP, 80))

	for _, tc := range []struct {
		a    string
		want bool
	}{{"10.96.0.10", true}, {"10.96.1.10", false}, {"::ffff:10.96.0.1", true}, {"fd00::1", false}} {
		if got := IsExcluded(exclude, fixture.Addr(tc.a)); got != tc.want {
			t.Errorf("IsExcluded(%s) = %v, want %v", tc.a, got, tc.want)
		}
	}
}

func TestSameAddressTwiceLastWins(t *testing.T) {
	// An external IP equal to the cluster IP: one virtual server, with the external policy's
	// real servers, as upstream's second sync of the same virtual server leaves it.
	svc := fixture.Service("web", "10.96.0.10", fixture.ExternalIPs("10.96.0.10"), fixture.ExternalLocal(0))
	in := only(t, v1.IPv4Protocol, svc, fixture.Slice(svc, v1.IPv4Protocol,
		fixture.Endpoint{IP: "10.244.0.5", Node: fixture.Node}, fixture.Endpoint{IP: "10.244.1.5", Node: "node-b"}))
	st := DesiredServicePort(ctx4(), in)
	if len(st.VirtualServers) != 1 || !reflect.DeepEqual(st.VirtualServers[0].RealServers, fixture.RS("10.244.0.5")) {
		t.Errorf("want one virtual server with the local endpoint:%s", dump(st))
	}
	if len(st.Bindings) != 1 {
		t.Errorf("bindings = %v", st.Bindings)
	}
}

func TestSelectNodePortAddresses(t *testing.T) {
	local := []netip.Addr{fixture.Addr("192.168.0.10"), fixture.Addr("10.0.0.10")}
	all := []netip.Addr{fixture.Addr("127.0.0.1"), fixture.Addr("192.168.0.10"), fixture.Addr("10.0.0.10"), fixture.Addr("10.96.0.10"), fixture.Addr("fd00::1")}
	for _, tc := range []struct {
		name string
		cidr []string
		want []netip.Addr
	}{
		{"match all", nil, local},
		{"match all explicitly", []string{"0.0.0.0/0", "fd00::/8"}, local},
		{"one CIDR", []string{"192.168.0.0/16"}, []netip.Addr{fixture.Addr("192.168.0.10")}},
		{"loopback never", []string{"127.0.0.0/8"}, nil},
		// kube-ipvs0's addresses are not left out when the CIDRs cover them, as upstream.
		{"covers a VIP", []string{"10.0.0.0/8"}, []netip.Addr{fixture.Addr("10.0.0.10"), fixture.Addr("10.96.0.10")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			npa := proxyutil.NewNodePortAddresses(v1.IPv4Protocol, tc.cidr)
			got := SelectNodePortAddresses(npa, local, all)
			ctx := ctx4()
			ctx.NodePortAddresses = got
			// Compare as the state uses them: sorted.
			b := &builder{ctx: ctx}
			gotSorted := b.nodePortAddresses()
			w := &builder{ctx: &NodeContext{Family: v1.IPv4Protocol, NodePortAddresses: tc.want}}
			if !reflect.DeepEqual(gotSorted, w.nodePortAddresses()) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestRealServersSortedAndUnique: a virtual server's real servers are sorted by address and
// port, and an endpoint that two slices both hold is one real server. Every virtual server of
// the port (cluster IP and each NodePort address) gets the same list.
func TestRealServersSortedAndUnique(t *testing.T) {
	svc := fixture.Service("web", "10.96.0.10", fixture.NodePort(30080))
	a := fixture.Slice(svc, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.3.1"}, fixture.Endpoint{IP: "10.244.1.9"}, fixture.Endpoint{IP: "10.244.10.2"})
	b := fixture.Slice(svc, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.1.9"}, fixture.Endpoint{IP: "10.244.2.4"})
	b.Name = "web-b"
	st := DesiredServicePort(ctx4(), only(t, v1.IPv4Protocol, svc, a, b))
	want := fixture.RS("10.244.1.9", "10.244.2.4", "10.244.3.1", "10.244.10.2")
	if len(st.VirtualServers) != 3 {
		t.Fatalf("want the cluster IP and two NodePort virtual servers:%s", dump(st))
	}
	for _, v := range st.VirtualServers {
		if !reflect.DeepEqual(v.RealServers, want) {
			t.Errorf("real servers of %s = %v, want %v", v.VirtualServer.Key, v.RealServers, want)
		}
	}
}
