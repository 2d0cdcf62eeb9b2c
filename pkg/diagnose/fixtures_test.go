package diagnose

import (
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
)

// Fixtures: a node (192.168.0.10 on eth0, flannel.1 on 8472) as upstream and ours leave it.

// upstreamNAT is upstream v1.37.2's IPVS nat table (the parts the checks read).
const upstreamNAT = `*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SERVICES - [0:0]
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-POSTROUTING -m comment --comment "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose" -m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ
COMMIT
`

// oursNAT is ours with --masquerade-random-fully=auto on a node with flannel.1.
var oursNAT = strings.Replace(upstreamNAT,
	`-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT"`,
	`-A KUBE-POSTROUTING -p udp -m udp --dport 8472 -m comment --comment "kube-proxy-ipvs VXLAN traffic requiring SNAT without random-fully" -j MASQUERADE
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT"`, 1)

// preKube119NAT does not clear the mark (kube-proxy before 1.19).
var preKube119NAT = strings.Replace(upstreamNAT, "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0\n", "", 1)

// flannelNAT adds flannel's own --random-fully rules, which match pod sources only.
var flannelNAT = strings.Replace(oursNAT, "COMMIT", `-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG
:FLANNEL-POSTRTG - [0:0]
-A FLANNEL-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully
COMMIT`, 1)

const markingMangle = `*mangle
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -p udp -m udp --dport 8472 -j MARK --set-xmark 0x4000/0x4000
COMMIT
`

const emptyMangle = "*mangle\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n"

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

func on(b bool) *bool { return &b }

// node is a healthy node running ours, kernel 6.1; tests change what they need.
func node() *Snapshot {
	return &Snapshot{
		NodeName:      "node-a",
		KernelRelease: "6.1.0-28-amd64",
		Links: []Link{
			{Name: "lo", Kind: "device", Up: true, Addrs: addrs("127.0.0.1")},
			{Name: "eth0", Kind: "device", Up: true, Addrs: addrs("192.168.0.10"), TxChecksum: on(true)},
			{Name: "flannel.1", Kind: "vxlan", Up: true, VXLANPort: 8472, Addrs: addrs("10.244.0.0"), TxChecksum: on(true)},
			{Name: "cni0", Kind: "bridge", Up: true, Addrs: addrs("10.244.0.1")},
			{Name: "kube-ipvs0", Kind: "dummy", Addrs: addrs("10.96.0.1", "10.96.0.10")},
		},
		Gateways: addrs("192.168.0.1"),
		Sysctls: map[string]string{
			"net/ipv4/vs/conntrack": "1", "net/ipv4/vs/conn_reuse_mode": "1", "net/ipv4/vs/expire_nodest_conn": "1",
			"net/ipv4/vs/expire_quiescent_template": "1", "net/ipv4/ip_forward": "1",
			"net/ipv4/conf/all/rp_filter": "1", "net/ipv4/conf/all/log_martians": "0", "net/ipv4/conf/all/accept_local": "0",
		},
		IPTables: map[string]map[string]string{"IPv4": {"nat": oursNAT, "mangle": emptyMangle}},
		IPVS: []kipvs.VirtualServer{
			{Key: kipvs.Key{Address: netip.MustParseAddr("10.96.0.1"), Protocol: kipvs.TCP, Port: 443}, Scheduler: "rr"},
			{Key: kipvs.Key{Address: netip.MustParseAddr("10.96.0.10"), Protocol: kipvs.UDP, Port: 53}, Scheduler: "rr"},
		},
		Services: []corev1.Service{
			service("default", "kubernetes", "10.96.0.1", corev1.ProtocolTCP, 443),
			service("kube-system", "dns", "10.96.0.10", corev1.ProtocolUDP, 53),
		},
		EndpointSlices: []discoveryv1.EndpointSlice{{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "kubernetes", Labels: map[string]string{discoveryv1.LabelServiceName: "kubernetes"}},
			Endpoints:  []discoveryv1.Endpoint{{Addresses: []string{"192.168.0.5"}}},
		}},
		Nodes: []corev1.Node{
			nodeObj("node-a", "192.168.0.10"), nodeObj("node-b", "192.168.0.11"),
		},
		Missing: map[Source]string{},
	}
}

func service(ns, name, clusterIP string, proto corev1.Protocol, port int32) corev1.Service {
	return corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: clusterIP, ClusterIPs: []string{clusterIP},
			Ports: []corev1.ServicePort{{Name: "p", Protocol: proto, Port: port}}},
	}
}

func nodeObj(name, ip string) corev1.Node {
	return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}}}
}

// lbService is an eTP Local LoadBalancer Service with ingress ip, programmed on the node.
func lbService(s *Snapshot, ip string, etpLocal bool) {
	svc := service("web", "lb", "10.96.0.20", corev1.ProtocolTCP, 80)
	svc.Spec.Type = corev1.ServiceTypeLoadBalancer
	if etpLocal {
		svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
	s.Services = append(s.Services, svc)
	for _, a := range []string{"10.96.0.20", ip} {
		s.IPVS = append(s.IPVS, kipvs.VirtualServer{Key: kipvs.Key{Address: netip.MustParseAddr(a), Protocol: kipvs.TCP, Port: 80}})
	}
	s.Links[len(s.Links)-1].Addrs = append(s.Links[len(s.Links)-1].Addrs, netip.MustParseAddr("10.96.0.20"))
}

func bind(s *Snapshot, ip string) {
	l := &s.Links[len(s.Links)-1]
	l.Addrs = append(l.Addrs, netip.MustParseAddr(ip))
}
