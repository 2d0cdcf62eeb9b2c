package ipvs

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	sysctltest "k8s.io/component-helpers/node/util/sysctl/testing"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	"k8s.io/kubernetes/pkg/proxy/conntrack"
	"k8s.io/kubernetes/pkg/proxy/healthcheck"
	proxyutil "k8s.io/kubernetes/pkg/proxy/util"
	utiliptables "k8s.io/kubernetes/pkg/util/iptables"
	iptablestest "k8s.io/kubernetes/pkg/util/iptables/testing"
	"k8s.io/utils/ptr"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/forkconfig"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipset"
	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/netdev"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/sockdiag"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/desired"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/internal/fixture"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/reconcile"
)

// The packet-flow table: each scenario programs the fake kernel through the real proxier
// (Services, EndpointSlices, Nodes, then a sync) and each row traces one packet through what
// the fakes hold. docs/testing.md explains how to read a row.
//
// The node under test is node-a: 192.168.0.10 on eth0, pods in 10.244.0.0/16 (its own in
// 10.244.2.0/24), node-b is 192.168.0.11 with pods in 10.244.1.0/24. Clients outside the cluster
// are in 198.51.100.0/24 and 192.0.2.0/24; the cloud load balancer's VIP is 203.0.113.7.

type flowRow struct {
	story string
	pkt   flowPacket
	want  string
}

type flowScenario struct {
	name  string
	setup func(t *testing.T) *env
	rows  []flowRow
}

// flowEnv is an env with the fork's settings changed before the first sync.
func flowEnv(t *testing.T, fork func(*forkconfig.Config), cfg ...func(*kubeproxyconfig.KubeProxyConfiguration, *env)) *env {
	t.Helper()
	e := newEnv(t, cfg...)
	f := forkconfig.Default()
	if fork != nil {
		fork(&f)
	}
	e.p.fork = f
	e.p.policy = newPolicyState(e.p.family, e.p.nodeName, f)
	return e
}

// flowEnv6 is flowEnv for an IPv6 proxier: node-a is fd00:1::10 on eth0, pods in
// fd00:244::/56.
func flowEnv6(t *testing.T) *env {
	t.Helper()
	e := &env{
		t: t, ipvs: kipvs.NewFake(), nd: netdev.NewFake(), ipset: ipset.NewFake(),
		ipt:       &countingIPTables{FakeIPTables: iptablestest.NewIPv6Fake()},
		listeners: sockdiag.NewFake(),
	}
	e.nd.AddLink("eth0", fixture.NodeIP6)
	k := Kernel{IPVS: e.ipvs, Netdev: e.nd, IPSet: e.ipset, IPTables: e.ipt, Conntrack: conntrack.NewFake(), Listeners: e.listeners}
	p, err := NewProxier(context.Background(), Config{
		Family:              v1.IPv6Protocol,
		NodeName:            fixture.Node,
		NodeIP:              net.IP(fixture.NodeIP6.AsSlice()),
		Proxy:               defaultTestConfig(),
		Fork:                forkconfig.Default(),
		LocalDetector:       proxyutil.NewDetectLocalByCIDR("fd00:244::/56"),
		ServiceHealthServer: healthcheck.NewFakeServiceHealthServer(),
	}, k, sysctltest.NewFake(), false)
	if err != nil {
		t.Fatalf("NewProxier: %v", err)
	}
	e.p = p
	return e
}

// Service builders of the table. web: 10.96.0.10:80 -> 8080, NodePort 30080, one endpoint on
// node-b (10.244.1.5) and one here (10.244.2.6).
func flowWeb() []any {
	svc, sl := webService()
	return []any{svc, sl}
}

// flowLB is a LoadBalancer Service with externalTrafficPolicy Local: VIP 203.0.113.7:80,
// NodePort 30080, healthCheckNodePort 31000, endpoints 10.244.1.5 (node-b), 10.244.2.6 (here).
func flowLB(opts ...func(*v1.Service)) []any {
	svc := lbService("shop", "10.96.0.20", opts...)
	return []any{svc, fixture.Slice(svc, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.1.5", Node: "node-b"}, fixture.Endpoint{IP: "10.244.2.6", Node: fixture.Node})}
}

func ipModeProxy(s *v1.Service) {
	s.Status.LoadBalancer.Ingress[0].IPMode = ptr.To(v1.LoadBalancerIPModeProxy)
}

const (
	flowVXLANPort = 8472
	markMasq      = 0x4000
)

var flowScenarios = []flowScenario{
	{
		name: "ClusterIP and NodePort, defaults",
		setup: func(t *testing.T) *env {
			e := flowEnv(t, nil)
			objs := flowWeb()
			empty := fixture.Service("empty", "10.96.0.11")
			sticky := fixture.Service("sticky", "10.96.0.12", func(s *v1.Service) {
				s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
				s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](600)}}
			})
			sctp := fixture.Service("sctp", "10.96.0.15", fixture.Protocol(v1.ProtocolSCTP), fixture.NodePort(30090))
			objs = append(objs, sctp, fixture.Slice(sctp, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.1.40", Node: "node-b"}))
			nodeLocal := fixture.Service("node-local", "10.96.0.16", fixture.InternalLocal)
			remoteOnly := fixture.Service("remote-only", "10.96.0.17", fixture.InternalLocal)
			objs = append(objs,
				nodeLocal, fixture.Slice(nodeLocal, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.1.50", Node: "node-b"}, fixture.Endpoint{IP: "10.244.2.51", Node: fixture.Node}),
				remoteOnly, fixture.Slice(remoteOnly, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.1.52", Node: "node-b"}))
			rolling := fixture.Service("rolling", "10.96.0.13")
			draining := fixture.Service("draining", "10.96.0.14")
			objs = append(objs, empty,
				sticky, fixture.Slice(sticky, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.1.20", Node: "node-b"}, fixture.Endpoint{IP: "10.244.1.21", Node: "node-b"}),
				rolling, fixture.Slice(rolling, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.1.7", Node: "node-b"}, fixture.Endpoint{IP: "10.244.1.8", Node: "node-b", NotReady: true, Terminating: true}),
				draining, fixture.Slice(draining, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.1.9", Node: "node-b"}, fixture.Endpoint{IP: "10.244.1.10", Node: "node-b"}))
			e.start(objs...)
			// 10.244.1.9 goes away while a connection to it is open: IPVS keeps it at weight 0.
			if err := e.ipvs.SetConnections(fixture.Key("10.96.0.14", kipvs.TCP, 80), netip.MustParseAddrPort("10.244.1.9:8080"), 1, 0); err != nil {
				t.Fatal(err)
			}
			e.p.OnEndpointSliceUpdate(nil, fixture.Slice(draining, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.1.10", Node: "node-b"}))
			e.sync()
			return e
		},
		rows: []flowRow{
			{"a pod calls web's cluster IP: either endpoint, its source kept",
				flowPacket{from: fromPod, src: "10.244.2.20", dst: "10.96.0.10", port: 80},
				"IPVS 10.96.0.10:80/TCP -> 10.244.1.5:8080 10.244.2.6:8080"},
			{"web's own pod calls web: if it picks itself the hairpin is masqueraded",
				flowPacket{from: fromPod, src: "10.244.2.6", dst: "10.96.0.10", port: 80},
				"IPVS 10.96.0.10:80/TCP -> 10.244.1.5:8080 10.244.2.6:8080[masq]"},
			{"the node calls the cluster IP (the kernel picks the VIP as source): masqueraded",
				flowPacket{from: fromNode, dst: "10.96.0.10", port: 80},
				"IPVS 10.96.0.10:80/TCP -> 10.244.1.5:8080 10.244.2.6:8080 masq random-fully"},
			{"a client outside the cluster CIDR routed to the cluster IP: masqueraded",
				flowPacket{from: fromOutside, src: "198.51.100.20", dst: "10.96.0.10", port: 80},
				"IPVS 10.96.0.10:80/TCP -> 10.244.1.5:8080 10.244.2.6:8080 masq random-fully"},
			{"a pod tries the cluster IP on a port web does not have: rejected by the IPVS filter",
				flowPacket{from: fromPod, src: "10.244.2.20", dst: "10.96.0.10", port: 22},
				"REJECT in KUBE-IPVS-FILTER"},
			{"an outside client on web's NodePort: either endpoint, masqueraded",
				flowPacket{from: fromOutside, src: "198.51.100.20", dst: "192.168.0.10", port: 30080},
				"IPVS 192.168.0.10:30080/TCP -> 10.244.1.5:8080 10.244.2.6:8080 masq random-fully"},
			{"the node calls its own NodePort: masqueraded",
				flowPacket{from: fromNode, dst: "192.168.0.10", port: 30080},
				"IPVS 192.168.0.10:30080/TCP -> 10.244.1.5:8080 10.244.2.6:8080 masq random-fully"},
			{"an SCTP NodePort from outside (matched per address, not per port): masqueraded",
				flowPacket{from: fromOutside, src: "198.51.100.20", dst: "192.168.0.10", port: 30090, proto: "sctp"},
				"IPVS 192.168.0.10:30090/SCTP -> 10.244.1.40:8080 masq random-fully"},
			{"an outside client tries the cluster IP on web's NodePort number: rejected by the IPVS filter",
				flowPacket{from: fromOutside, src: "198.51.100.20", dst: "10.96.0.10", port: 30080},
				"REJECT in KUBE-IPVS-FILTER"},
			{"an outside client on sshd of the node: not ours, the host answers",
				flowPacket{from: fromOutside, src: "198.51.100.20", dst: "192.168.0.10", port: 22},
				"host 192.168.0.10:22"},
			{"a pod calls a Service without endpoints: IPVS has no real server and rejects",
				flowPacket{from: fromPod, src: "10.244.2.20", dst: "10.96.0.11", port: 80},
				"IPVS 10.96.0.11:80/TCP -> none: rejected"},
			{"ClientIP affinity: the virtual server is persistent for the affinity timeout",
				flowPacket{from: fromPod, src: "10.244.2.20", dst: "10.96.0.12", port: 80},
				"IPVS 10.96.0.12:80/TCP persistent 600s -> 10.244.1.20:8080 10.244.1.21:8080"},
			{"internalTrafficPolicy Local: a pod is sent to this node's endpoint only",
				flowPacket{from: fromPod, src: "10.244.2.20", dst: "10.96.0.16", port: 80},
				"IPVS 10.96.0.16:80/TCP -> 10.244.2.51:8080"},
			{"internalTrafficPolicy Local without an endpoint here: rejected, not sent to node-b",
				flowPacket{from: fromPod, src: "10.244.2.20", dst: "10.96.0.17", port: 80},
				"IPVS 10.96.0.17:80/TCP -> none: rejected"},
			{"a terminating endpoint beside a ready one gets no new connection",
				flowPacket{from: fromPod, src: "10.244.2.20", dst: "10.96.0.13", port: 80},
				"IPVS 10.96.0.13:80/TCP -> 10.244.1.7:8080"},
			{"an endpoint removed with a connection open drains at weight 0: never picked",
				flowPacket{from: fromPod, src: "10.244.2.20", dst: "10.96.0.14", port: 80},
				"IPVS 10.96.0.14:80/TCP -> 10.244.1.10:8080"},
			{"a pod talks to the internet: not ours, passes through",
				flowPacket{from: fromPod, src: "10.244.2.20", dst: "8.8.8.8", port: 53, proto: "udp"},
				"routed 8.8.8.8:53"},
		},
	},
	{
		name: "masquerade-all",
		setup: func(t *testing.T) *env {
			e := flowEnv(t, nil, func(c *kubeproxyconfig.KubeProxyConfiguration, _ *env) { c.Linux.MasqueradeAll = true })
			e.start(flowWeb()...)
			return e
		},
		rows: []flowRow{
			{"with --masquerade-all a pod's call to the cluster IP is masqueraded too",
				flowPacket{from: fromPod, src: "10.244.2.20", dst: "10.96.0.10", port: 80},
				"IPVS 10.96.0.10:80/TCP -> 10.244.1.5:8080 10.244.2.6:8080 masq random-fully"},
		},
	},
	{
		name: "no cluster CIDR known",
		setup: func(t *testing.T) *env {
			e := flowEnv(t, nil)
			e.p.detector = proxyutil.NewNoOpLocalDetector()
			e.start(flowWeb()...)
			return e
		},
		rows: []flowRow{
			{"without a pod detector a pod's call to the cluster IP keeps its source",
				flowPacket{from: fromPod, src: "10.244.2.20", dst: "10.96.0.10", port: 80},
				"IPVS 10.96.0.10:80/TCP -> 10.244.1.5:8080 10.244.2.6:8080"},
			{"without a pod detector the node's call (source: the VIP) is still masqueraded",
				flowPacket{from: fromNode, dst: "10.96.0.10", port: 80},
				"IPVS 10.96.0.10:80/TCP -> 10.244.1.5:8080 10.244.2.6:8080 masq random-fully"},
		},
	},
	{
		name: "nodePortAddresses",
		setup: func(t *testing.T) *env {
			e := flowEnv(t, nil, func(c *kubeproxyconfig.KubeProxyConfiguration, e *env) {
				c.NodePortAddresses = []string{"192.168.0.0/24"}
				e.nd.AddLink("eth1", fixture.NodeIP4b)
			})
			e.start(flowWeb()...)
			return e
		},
		rows: []flowRow{
			{"the NodePort on an address nodePortAddresses selects is served",
				flowPacket{from: fromOutside, src: "198.51.100.20", dst: "192.168.0.10", port: 30080},
				"IPVS 192.168.0.10:30080/TCP -> 10.244.1.5:8080 10.244.2.6:8080 masq random-fully"},
			{"the NodePort on the node's other address is not served: the host gets it",
				flowPacket{from: fromOutside, src: "198.51.100.20", dst: "10.0.0.10", port: 30080},
				"host 10.0.0.10:30080"},
		},
	},
	{
		name: "LoadBalancer bound (default), externalTrafficPolicy Local",
		setup: func(t *testing.T) *env {
			e := flowEnv(t, nil)
			fw := fixture.Service("guarded", "10.96.0.21", fixture.LoadBalancer(30081, v1.LoadBalancerIngress{IP: "203.0.113.8"}),
				func(s *v1.Service) { s.Spec.LoadBalancerSourceRanges = []string{"198.51.100.0/24"} })
			nodeOK := fixture.Service("guarded-lan", "10.96.0.22", fixture.LoadBalancer(30082, v1.LoadBalancerIngress{IP: "203.0.113.9"}),
				func(s *v1.Service) { s.Spec.LoadBalancerSourceRanges = []string{"192.168.0.0/24"} })
			e.start(append(flowLB(), fw, fixture.Slice(fw, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.1.6", Node: "node-b"}),
				nodeOK, fixture.Slice(nodeOK, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.1.6", Node: "node-b"}))...)
			return e
		},
		rows: []flowRow{
			{"a client through the LB to the VIP: only this node's endpoint, client source kept",
				flowPacket{from: fromOutside, src: "198.51.100.20", dst: "203.0.113.7", port: 80},
				"IPVS 203.0.113.7:80/TCP -> 10.244.2.6:8080"},
			{"the LB health-checks from its VIP: the VIP is local here, the kernel drops it (fix 1)",
				flowPacket{from: fromOutside, src: "203.0.113.7", dst: "192.168.0.10", port: 31000},
				"martian source 203.0.113.7"},
			{"a health check from another address reaches kube-proxy's health server",
				flowPacket{from: fromOutside, src: "198.51.100.9", dst: "192.168.0.10", port: 31000},
				"host 192.168.0.10:31000"},
			{"a pod calls the LB VIP: answered on the node without a trip to the LB",
				flowPacket{from: fromPod, src: "10.244.2.20", dst: "203.0.113.7", port: 80},
				"IPVS 203.0.113.7:80/TCP -> 10.244.2.6:8080"},
			{"eTP Local NodePort from outside: only the local endpoint, source kept",
				flowPacket{from: fromOutside, src: "198.51.100.20", dst: "192.168.0.10", port: 30080},
				"IPVS 192.168.0.10:30080/TCP -> 10.244.2.6:8080"},
			{"a client inside loadBalancerSourceRanges is served",
				flowPacket{from: fromOutside, src: "198.51.100.20", dst: "203.0.113.8", port: 80},
				"IPVS 203.0.113.8:80/TCP -> 10.244.1.6:8080 masq random-fully"},
			{"a client outside loadBalancerSourceRanges is dropped",
				flowPacket{from: fromOutside, src: "192.0.2.1", dst: "203.0.113.8", port: 80},
				"DROP in KUBE-SOURCE-RANGES-FIREWALL"},
			{"the node itself is outside the source ranges: its call to the VIP is dropped",
				flowPacket{from: fromNode, dst: "203.0.113.8", port: 80},
				"IPVS 203.0.113.8:80/TCP -> 10.244.1.6:8080 DROP by KUBE-IPVS-OUT-FILTER"},
			{"a pod outside the source ranges is dropped too, as upstream",
				flowPacket{from: fromPod, src: "10.244.2.20", dst: "203.0.113.8", port: 80},
				"DROP in KUBE-SOURCE-RANGES-FIREWALL"},
			{"the node inside the source ranges calls the VIP (source: the VIP): served, masqueraded",
				flowPacket{from: fromNode, dst: "203.0.113.9", port: 80},
				"IPVS 203.0.113.9:80/TCP -> 10.244.1.6:8080 masq random-fully"},
			{"a LAN client inside those source ranges is served",
				flowPacket{from: fromOutside, src: "192.168.0.50", dst: "203.0.113.9", port: 80},
				"IPVS 203.0.113.9:80/TCP -> 10.244.1.6:8080 masq random-fully"},
		},
	},
	{
		name: "LoadBalancer not bound: --ipvs-bind-lb-ingress=false",
		setup: func(t *testing.T) *env {
			e := flowEnv(t, func(f *forkconfig.Config) { f.BindLoadBalancerIngress = false })
			e.start(flowLB()...)
			return e
		},
		rows: []flowRow{
			{"the LB health-checks from its VIP: accepted, kube-proxy's health server answers",
				flowPacket{from: fromOutside, src: "203.0.113.7", dst: "192.168.0.10", port: 31000},
				"host 192.168.0.10:31000"},
			{"a pod calls the LB VIP: not captured, it goes out to the load balancer",
				flowPacket{from: fromPod, src: "10.244.2.20", dst: "203.0.113.7", port: 80},
				"routed 203.0.113.7:80"},
			{"the LB's traffic on the NodePort is still served, local endpoint only",
				flowPacket{from: fromOutside, src: "198.51.100.20", dst: "192.168.0.10", port: 30080},
				"IPVS 192.168.0.10:30080/TCP -> 10.244.2.6:8080"},
		},
	},
	{
		name: "LoadBalancer not bound: annotation bind-lb-ingress false",
		setup: func(t *testing.T) *env {
			e := flowEnv(t, nil)
			e.start(flowLB(fixture.Annotate(desired.AnnotationBindLBIngress, "false"))...)
			return e
		},
		rows: []flowRow{
			{"the annotated Service's LB health-checks from its VIP: accepted",
				flowPacket{from: fromOutside, src: "203.0.113.7", dst: "192.168.0.10", port: 31000},
				"host 192.168.0.10:31000"},
			{"a pod calls the annotated Service's VIP: it goes out to the load balancer",
				flowPacket{from: fromPod, src: "10.244.2.20", dst: "203.0.113.7", port: 80},
				"routed 203.0.113.7:80"},
		},
	},
	{
		name: "LoadBalancer ipMode Proxy",
		setup: func(t *testing.T) *env {
			e := flowEnv(t, nil)
			e.start(flowLB(ipModeProxy)...)
			return e
		},
		rows: []flowRow{
			{"ipMode Proxy: the VIP is not ours, a pod's call goes to the load balancer",
				flowPacket{from: fromPod, src: "10.244.2.20", dst: "203.0.113.7", port: 80},
				"routed 203.0.113.7:80"},
			{"ipMode Proxy: a health check from the VIP is accepted",
				flowPacket{from: fromOutside, src: "203.0.113.7", dst: "192.168.0.10", port: 31000},
				"host 192.168.0.10:31000"},
		},
	},
	{
		name: "externalIPs and the address guard",
		setup: func(t *testing.T) *env {
			e := flowEnv(t, nil)
			e.listeners.Listen(sockdiag.TCP, "0.0.0.0", 22)
			e.p.OnNodeAddresses(fixture.Node, []netip.Addr{fixture.NodeIP4})
			e.p.OnNodeAddresses("node-b", []netip.Addr{fixture.Addr(nodeBAddr)})
			e.p.OnAPIServerEndpoints([]netip.AddrPort{netip.MustParseAddrPort("192.168.0.100:6443"), netip.MustParseAddrPort("192.168.0.10:6443")})
			objs := flowWeb()
			add := func(name, clusterIP, extIP string, port int32, epIP string) {
				svc := fixture.Service(name, clusterIP, fixture.ExternalIPs(extIP), func(s *v1.Service) { s.Spec.Ports[0].Port = port })
				objs = append(objs, svc, fixture.Slice(svc, v1.IPv4Protocol, fixture.Endpoint{IP: epIP, Node: "node-b"}))
			}
			add("ext", "10.96.0.30", "198.51.100.50", 80, "10.244.1.30")
			add("oops", "10.96.0.31", nodeBAddr, 80, "10.244.1.31")
			add("grab-api", "10.96.0.32", "192.168.0.100", 6443, "10.244.1.32")
			add("grab-web", "10.96.0.33", "10.96.0.10", 80, "10.244.1.33")
			add("own", "10.96.0.34", "192.168.0.10", 8888, "10.244.1.34")
			add("grab-ssh", "10.96.0.35", "192.168.0.10", 22, "10.244.1.35")
			add("grab-local-api", "10.96.0.36", "192.168.0.10", 6443, "10.244.1.36")
			e.start(objs...)
			return e
		},
		rows: []flowRow{
			{"an outside client on an ordinary externalIP: served, masqueraded",
				flowPacket{from: fromOutside, src: "192.0.2.1", dst: "198.51.100.50", port: 80},
				"IPVS 198.51.100.50:80/TCP -> 10.244.1.30:8080 masq random-fully"},
			{"a pod calls node-b's address, which a Service lists as externalIP: it reaches node-b (fix 3)",
				flowPacket{from: fromPod, src: "10.244.2.20", dst: nodeBAddr, port: 80},
				"routed 192.168.0.11:80"},
			{"the node calls node-b's address: not captured either",
				flowPacket{from: fromNode, dst: nodeBAddr, port: 80},
				"routed 192.168.0.11:80"},
			{"a pod calls the apiserver, whose address a Service lists as externalIP: it reaches the apiserver",
				flowPacket{from: fromPod, src: "10.244.2.20", dst: "192.168.0.100", port: 6443},
				"routed 192.168.0.100:6443"},
			{"an externalIP equal to web's cluster IP does not take web's traffic",
				flowPacket{from: fromPod, src: "10.244.2.20", dst: "10.96.0.10", port: 80},
				"IPVS 10.96.0.10:80/TCP -> 10.244.1.5:8080 10.244.2.6:8080"},
			{"this node's own address as externalIP is served through IPVS, unbound, as upstream",
				flowPacket{from: fromOutside, src: "192.0.2.1", dst: "192.168.0.10", port: 8888},
				"IPVS 192.168.0.10:8888/TCP -> 10.244.1.34:8080 masq random-fully"},
			{"this node's own address as externalIP on sshd's port: sshd still answers",
				flowPacket{from: fromOutside, src: "192.0.2.1", dst: "192.168.0.10", port: 22},
				"host 192.168.0.10:22"},
			{"this node's own address as externalIP on the apiserver's port: the local apiserver still answers",
				flowPacket{from: fromPod, src: "10.244.2.20", dst: "192.168.0.10", port: 6443},
				"host 192.168.0.10:6443"},
		},
	},
	{
		name: "protected CIDRs and the externalIP allow-list",
		setup: func(t *testing.T) *env {
			e := flowEnv(t, func(f *forkconfig.Config) {
				f.ProtectedCIDRs = []string{"192.168.0.250/32"}
				f.ExternalIPCIDRs = []string{"198.51.100.0/24"}
			})
			svc := fixture.Service("vip", "10.96.0.40", fixture.LoadBalancer(30083, v1.LoadBalancerIngress{IP: "192.168.0.250"}), fixture.ExternalIPs("192.168.0.250", "198.51.100.60", "203.0.113.60"))
			e.start(append(flowWeb(), svc, fixture.Slice(svc, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.1.41", Node: "node-b"}))...)
			return e
		},
		rows: []flowRow{
			{"the control plane's keepalived VIP, named as LB IP and externalIP, is never captured",
				flowPacket{from: fromPod, src: "10.244.2.20", dst: "192.168.0.250", port: 80},
				"routed 192.168.0.250:80"},
			{"an externalIP inside --ipvs-external-ip-cidrs is served",
				flowPacket{from: fromOutside, src: "192.0.2.1", dst: "198.51.100.60", port: 80},
				"IPVS 198.51.100.60:80/TCP -> 10.244.1.41:8080 masq random-fully"},
			{"an externalIP outside --ipvs-external-ip-cidrs is not captured",
				flowPacket{from: fromPod, src: "10.244.2.20", dst: "203.0.113.60", port: 80},
				"routed 203.0.113.60:80"},
			{"the Service's cluster IP is still served",
				flowPacket{from: fromPod, src: "10.244.2.20", dst: "10.96.0.40", port: 80},
				"IPVS 10.96.0.40:80/TCP -> 10.244.1.41:8080"},
		},
	},
	{
		name: "IPv6",
		setup: func(t *testing.T) *env {
			e := flowEnv6(t)
			svc := fixture.Service("web6", "fd00:96::10", fixture.LoadBalancer(30080, v1.LoadBalancerIngress{IP: "2001:db8:7::7"}),
				func(s *v1.Service) { s.Spec.LoadBalancerSourceRanges = []string{"2001:db8:51::/48"} })
			e.start(svc, fixture.Slice(svc, v1.IPv6Protocol, fixture.Endpoint{IP: "fd00:244:0:1::5", Node: "node-b"}, fixture.Endpoint{IP: "fd00:244:0:2::6", Node: fixture.Node}))
			return e
		},
		rows: []flowRow{
			{"IPv6: a pod calls the cluster IP, source kept",
				flowPacket{from: fromPod, src: "fd00:244:0:2::20", dst: "fd00:96::10", port: 80},
				"IPVS [fd00:96::10]:80/TCP -> [fd00:244:0:1::5]:8080 [fd00:244:0:2::6]:8080"},
			{"IPv6: the node calls the cluster IP: masqueraded",
				flowPacket{from: fromNode, dst: "fd00:96::10", port: 80},
				"IPVS [fd00:96::10]:80/TCP -> [fd00:244:0:1::5]:8080 [fd00:244:0:2::6]:8080 masq random-fully"},
			{"IPv6: an outside client on the NodePort: masqueraded",
				flowPacket{from: fromOutside, src: "2001:db8:51::1", dst: "fd00:1::10", port: 30080},
				"IPVS [fd00:1::10]:30080/TCP -> [fd00:244:0:1::5]:8080 [fd00:244:0:2::6]:8080 masq random-fully"},
			{"IPv6: a client inside the source ranges on the LB IP is served",
				flowPacket{from: fromOutside, src: "2001:db8:51::1", dst: "2001:db8:7::7", port: 80},
				"IPVS [2001:db8:7::7]:80/TCP -> [fd00:244:0:1::5]:8080 [fd00:244:0:2::6]:8080 masq random-fully"},
			{"IPv6: a client outside the source ranges is dropped",
				flowPacket{from: fromOutside, src: "2001:db8:99::1", dst: "2001:db8:7::7", port: 80},
				"DROP in KUBE-SOURCE-RANGES-FIREWALL"},
		},
	},
	{
		name: "random-fully auto, with a flannel VXLAN link",
		setup: func(t *testing.T) *env {
			e := flowEnv(t, nil)
			e.nd.AddVXLAN("flannel.1", flowVXLANPort)
			e.start(flowWeb()...)
			return e
		},
		rows: []flowRow{
			{"a tunnel packet still carrying the masquerade mark keeps its source port (fix 2)",
				flowPacket{from: fromNode, dst: nodeBAddr, port: flowVXLANPort, proto: "udp", mark: markMasq},
				"routed 192.168.0.11:8472 masq"},
			{"an unmarked tunnel packet is not masqueraded at all",
				flowPacket{from: fromNode, dst: nodeBAddr, port: flowVXLANPort, proto: "udp"},
				"routed 192.168.0.11:8472"},
			{"the inner connection, node to cluster IP, keeps upstream's random-fully",
				flowPacket{from: fromNode, dst: "10.96.0.10", port: 80},
				"IPVS 10.96.0.10:80/TCP -> 10.244.1.5:8080 10.244.2.6:8080 masq random-fully"},
		},
	},
	{
		name: "random-fully auto, no VXLAN link",
		setup: func(t *testing.T) *env {
			e := flowEnv(t, nil)
			e.start(flowWeb()...)
			return e
		},
		rows: []flowRow{
			{"without a VXLAN link auto is upstream: a marked UDP 8472 packet gets random-fully",
				flowPacket{from: fromNode, dst: nodeBAddr, port: flowVXLANPort, proto: "udp", mark: markMasq},
				"routed 192.168.0.11:8472 masq random-fully"},
		},
	},
	{
		name: "random-fully always, with a flannel VXLAN link",
		setup: func(t *testing.T) *env {
			e := flowEnv(t, func(f *forkconfig.Config) { f.MasqueradeRandomFully = forkconfig.RandomFullyAlways })
			e.nd.AddVXLAN("flannel.1", flowVXLANPort)
			e.start(flowWeb()...)
			return e
		},
		rows: []flowRow{
			{"always: the marked tunnel packet's source port is randomized, as upstream",
				flowPacket{from: fromNode, dst: nodeBAddr, port: flowVXLANPort, proto: "udp", mark: markMasq},
				"routed 192.168.0.11:8472 masq random-fully"},
		},
	},
	{
		name: "random-fully never",
		setup: func(t *testing.T) *env {
			e := flowEnv(t, func(f *forkconfig.Config) { f.MasqueradeRandomFully = forkconfig.RandomFullyNever })
			e.start(flowWeb()...)
			return e
		},
		rows: []flowRow{
			{"never: service traffic is masqueraded without random-fully",
				flowPacket{from: fromNode, dst: "10.96.0.10", port: 80},
				"IPVS 10.96.0.10:80/TCP -> 10.244.1.5:8080 10.244.2.6:8080 masq"},
		},
	},
}

// TestPacketFlow traces every row of the table through the kernel state its scenario
// programmed.
func TestPacketFlow(t *testing.T) {
	for _, sc := range flowScenarios {
		t.Run(sc.name, func(t *testing.T) {
			k := readFlowKernel(t, sc.setup(t))
			for _, row := range sc.rows {
				t.Run(row.story, func(t *testing.T) {
					checkFlow(t, k, row)
				})
			}
		})
	}
}

func checkFlow(t *testing.T, k *flowKernel, row flowRow) {
	t.Helper()
	k.t = t
	got := k.trace(row.pkt)
	if got.String() != row.want {
		t.Errorf("%s\n  packet %s\n  got  %s\n  want %s\n  by:\n    %s", row.story, row.pkt, got, row.want, strings.Join(got.steps, "\n    "))
	}
}

// flowBreakages each damage one thing the proxier programmed, behind its back; the named row
// must then trace differently. They show that the table reads the kernel state, not the
// desired state, and that a broken rule, entry or binding makes a row fail.
var flowBreakages = []struct {
	name, scenario, row string
	breakIt             func(t *testing.T, e *env)
}{
	{"the MASQUERADE --random-fully rule deleted", "ClusterIP and NodePort, defaults",
		"an outside client on web's NodePort: either endpoint, masqueraded",
		func(t *testing.T, e *env) {
			editTable(t, e, desired.TableNAT, `-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully`, "")
		}},
	{"the KUBE-LOAD-BALANCER-SOURCE-CIDR entry deleted", "LoadBalancer bound (default), externalTrafficPolicy Local",
		"a client inside loadBalancerSourceRanges is served",
		func(t *testing.T, e *env) {
			delEntry(t, e, desired.SetLoadBalancerSourceCIDR, "203.0.113.8,tcp:80,198.51.100.0/24")
		}},
	{"the KUBE-LOAD-BALANCER-SOURCE-CIDR match deleted", "LoadBalancer bound (default), externalTrafficPolicy Local",
		"a client inside loadBalancerSourceRanges is served",
		func(t *testing.T, e *env) {
			editTable(t, e, desired.TableFilter, `-A KUBE-SOURCE-RANGES-FIREWALL -m comment --comment "Kubernetes service load balancer ip + port + source cidr for packet filter purpose" -m set --match-set KUBE-LOAD-BALANCER-SOURCE-CIDR dst,dst,src -j RETURN`, "")
		}},
	{"node-b's address bound to kube-ipvs0", "externalIPs and the address guard",
		"a pod calls node-b's address, which a Service lists as externalIP: it reaches node-b (fix 3)",
		func(t *testing.T, e *env) {
			if err := e.nd.AddAddress(reconcile.DummyDevice, fixture.Addr(nodeBAddr)); err != nil {
				t.Fatal(err)
			}
		}},
	{"the unbound LB VIP bound to kube-ipvs0", "LoadBalancer not bound: --ipvs-bind-lb-ingress=false",
		"the LB health-checks from its VIP: accepted, kube-proxy's health server answers",
		func(t *testing.T, e *env) {
			if err := e.nd.AddAddress(reconcile.DummyDevice, fixture.Addr("203.0.113.7")); err != nil {
				t.Fatal(err)
			}
		}},
	{"the VXLAN rule deleted", "random-fully auto, with a flannel VXLAN link",
		"a tunnel packet still carrying the masquerade mark keeps its source port (fix 2)",
		func(t *testing.T, e *env) {
			editTable(t, e, desired.TableNAT, `-A KUBE-POSTROUTING -p udp -m udp --dport 8472 -m comment --comment "kube-proxy-ipvs VXLAN traffic requiring SNAT without random-fully" -j MASQUERADE`, "")
		}},
	{"the eTP Local RETURN in KUBE-NODE-PORT deleted", "LoadBalancer bound (default), externalTrafficPolicy Local",
		"eTP Local NodePort from outside: only the local endpoint, source kept",
		func(t *testing.T, e *env) {
			editTable(t, e, desired.TableNAT, `-A KUBE-NODE-PORT -p tcp -m comment --comment "Kubernetes nodeport TCP port with externalTrafficPolicy=local" -m set --match-set KUBE-NODE-PORT-LOCAL-TCP dst -j RETURN`, "")
		}},
	{"the remaining real server set to weight 0", "ClusterIP and NodePort, defaults",
		"an endpoint removed with a connection open drains at weight 0: never picked",
		func(t *testing.T, e *env) {
			if err := e.ipvs.UpdateRealServer(fixture.Key("10.96.0.14", kipvs.TCP, 80), kipvs.RealServer{Address: fixture.Addr("10.244.1.10"), Port: 8080, Weight: 0}); err != nil {
				t.Fatal(err)
			}
		}},
}

// TestPacketFlowCatchesBreakage: each breakage makes its row fail. The row passes first on the
// same state, so the difference is the breakage's.
func TestPacketFlowCatchesBreakage(t *testing.T) {
	for _, b := range flowBreakages {
		t.Run(b.name, func(t *testing.T) {
			var sc *flowScenario
			for i := range flowScenarios {
				if flowScenarios[i].name == b.scenario {
					sc = &flowScenarios[i]
				}
			}
			if sc == nil {
				t.Fatalf("no scenario %q", b.scenario)
			}
			var row *flowRow
			for i := range sc.rows {
				if sc.rows[i].story == b.row {
					row = &sc.rows[i]
				}
			}
			if row == nil {
				t.Fatalf("no row %q in %q", b.row, b.scenario)
			}
			e := sc.setup(t)
			if got := readFlowKernel(t, e).trace(row.pkt).String(); got != row.want {
				t.Fatalf("the row fails before the breakage: got %s", got)
			}
			b.breakIt(t, e)
			got := readFlowKernel(t, e).trace(row.pkt)
			if got.String() == row.want {
				t.Errorf("after %s the row still passes: %s", b.name, got)
			}
			t.Logf("row %q now traces to %s (want %s)", row.story, got, row.want)
		})
	}
}

// editTable replaces one line of a table in the fake iptables (empty: deletes it), as an
// operator's iptables-restore would; it fails when the line is not there.
func editTable(t *testing.T, e *env, table, line, with string) {
	t.Helper()
	var buf bytes.Buffer
	if err := e.ipt.FakeIPTables.SaveInto(utiliptables.Table(table), &buf); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(buf.String(), "\n")
	found := false
	var out []string
	for _, l := range lines {
		if l == line {
			found = true
			if with == "" {
				continue
			}
			l = with
		}
		out = append(out, l)
	}
	if !found {
		t.Fatalf("no line %s in:\n%s", line, buf.String())
	}
	if err := e.ipt.FakeIPTables.Restore(utiliptables.Table(table), []byte(strings.Join(out, "\n")), utiliptables.FlushTables, utiliptables.NoRestoreCounters); err != nil {
		t.Fatalf("restoring %s: %v", table, err)
	}
}

func delEntry(t *testing.T, e *env, set, entry string) {
	t.Helper()
	if !e.entries(set)[entry] {
		t.Fatalf("no entry %s in %s: %v", entry, set, e.entries(set))
	}
	if err := e.ipset.Apply([]ipset.Op{{Kind: ipset.Del, Set: ipset.Set{Name: set}, Entry: entry}}); err != nil {
		t.Fatal(err)
	}
}
