package diagnose

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestChecks runs each check on fixtures: the healthy node finds nothing, and each failure mode
// is found with its severity and the evidence line that shows it.
func TestChecks(t *testing.T) {
	cases := []struct {
		name   string
		id     string
		mutate func(s *Snapshot)
		want   []Severity // the check's findings, in order; nil: none
		// evidence is a substring some evidence line of the first finding must contain.
		evidence string
	}{
		// 1: vxlan-checksum-offload
		{"ours auto: tunnel packets never meet --random-fully", IDVXLANChecksum, nil, nil, ""},
		{"upstream on a fixed kernel: latent", IDVXLANChecksum, func(s *Snapshot) { s.IPTables["IPv4"]["nat"] = upstreamNAT },
			[]Severity{Info}, "-j MASQUERADE --random-fully [tunnel packet to UDP 8472 with mark 0x4000]"},
		{"upstream on 5.4.40: affected", IDVXLANChecksum, func(s *Snapshot) {
			s.IPTables["IPv4"]["nat"] = upstreamNAT
			s.KernelRelease = "5.4.40-generic"
		}, []Severity{Warning}, "predates the stable backport (5.4.41)"},
		{"upstream on 3.10 with a marking agent: happening", IDVXLANChecksum, func(s *Snapshot) {
			s.IPTables["IPv4"] = map[string]string{"nat": upstreamNAT, "mangle": markingMangle}
			s.KernelRelease = "3.10.0-1127.el7.x86_64"
		}, []Severity{Error}, "tunnel packets are marked"},
		{"upstream, offload off", IDVXLANChecksum, func(s *Snapshot) {
			s.IPTables["IPv4"]["nat"] = upstreamNAT
			s.Links[2].TxChecksum = on(false)
		}, nil, ""},
		{"offload unknown", IDVXLANChecksum, func(s *Snapshot) {
			s.IPTables["IPv4"]["nat"] = upstreamNAT
			s.Links[2].TxChecksum = nil
		}, nil, ""},
		{"IPv6 rules, no IPv6 underlay address", IDVXLANChecksum, func(s *Snapshot) {
			s.IPTables["IPv6"] = map[string]string{"nat": upstreamNAT}
			s.Links[1].Addrs = append(s.Links[1].Addrs, netip.MustParseAddr("fe80::1"))
		}, nil, ""},
		{"flannel's own random-fully matches pod sources only", IDVXLANChecksum, func(s *Snapshot) { s.IPTables["IPv4"]["nat"] = flannelNAT }, nil, ""},
		{"calico's port too", IDVXLANChecksum, func(s *Snapshot) {
			s.IPTables["IPv4"]["nat"] = oursNAT
			s.Links = append(s.Links, Link{Name: "vxlan.calico", Kind: "vxlan", VXLANPort: 4789, TxChecksum: on(true)})
		}, []Severity{Info}, "link vxlan.calico: vxlan, dstport 4789"},

		// 3: tunnel-double-masquerade
		{"upstream, nothing marks tunnel packets", IDTunnelDoubleMasquerade, func(s *Snapshot) { s.IPTables["IPv4"]["nat"] = upstreamNAT }, nil, ""},
		{"upstream, an agent marks tunnel packets", IDTunnelDoubleMasquerade, func(s *Snapshot) {
			s.IPTables["IPv4"] = map[string]string{"nat": upstreamNAT, "mangle": markingMangle}
		}, []Severity{Warning}, "mangle: marks the tunnel packet with 0x4000: -A POSTROUTING -p udp -m udp --dport 8472"},
		{"kube-proxy before 1.19 does not clear its mark", IDTunnelDoubleMasquerade, func(s *Snapshot) { s.IPTables["IPv4"]["nat"] = preKube119NAT },
			[]Severity{Warning}, "does not clear the masquerade mark 0x4000"},
		{"ours auto, marked: no random port", IDTunnelDoubleMasquerade, func(s *Snapshot) { s.IPTables["IPv4"]["mangle"] = markingMangle }, nil, ""},

		// 2: lb-ingress-martian
		{"eTP Local LB IP bound", IDLBIngressMartian, func(s *Snapshot) { lbService(s, "203.0.113.7", true); bind(s, "203.0.113.7") },
			[]Severity{Warning}, "203.0.113.7 bound to kube-ipvs0"},
		{"eTP Local LB IP bound, martians logged", IDLBIngressMartian, func(s *Snapshot) {
			lbService(s, "203.0.113.7", true)
			bind(s, "203.0.113.7")
			s.KernelLog = []string{"[ 12.5] IPv4: martian source 192.168.0.10 from 203.0.113.7, on dev eth0"}
		}, []Severity{Error}, "kernel log: [ 12.5] IPv4: martian source 192.168.0.10 from 203.0.113.7"},
		{"eTP Local LB IP bound, accept_local", IDLBIngressMartian, func(s *Snapshot) {
			lbService(s, "203.0.113.7", true)
			bind(s, "203.0.113.7")
			s.Sysctls["net/ipv4/conf/all/accept_local"] = "1"
		}, []Severity{Info}, ""},
		{"eTP Local LB IP not bound (ours, binding off)", IDLBIngressMartian, func(s *Snapshot) { lbService(s, "203.0.113.7", true) }, nil, ""},
		{"eTP Cluster LB IP bound", IDLBIngressMartian, func(s *Snapshot) { lbService(s, "203.0.113.7", false); bind(s, "203.0.113.7") }, nil, ""},
		{"no kubeconfig: from the ipset", IDLBIngressMartian, func(s *Snapshot) {
			bind(s, "203.0.113.7")
			s.Services = nil
			s.Missing[SourceServices] = "no kubeconfig"
			s.IPSets = append(s.IPSets, ipsetContent(lbLocalSet, "203.0.113.7,tcp:80"))
		}, []Severity{Warning}, "ipset KUBE-LOAD-BALANCER-LOCAL: 203.0.113.7,tcp:80"},

		// 4: service-address-collision
		{"externalIP = another node's address, bound (upstream)", IDAddressCollision, func(s *Snapshot) {
			externalIP(s, "192.168.0.11")
			bind(s, "192.168.0.11")
		}, []Severity{Error}, "192.168.0.11 is the InternalIP of node node-b"},
		{"externalIP = another node's address, refused (ours)", IDAddressCollision, func(s *Snapshot) { externalIP(s, "192.168.0.11") },
			[]Severity{Info}, "not bound to kube-ipvs0"},
		{"externalIP = apiserver endpoint, captured in IPVS", IDAddressCollision, func(s *Snapshot) {
			externalIP(s, "192.168.0.5")
			s.IPVS = append(s.IPVS, vs("192.168.0.5", 443))
		}, []Severity{Warning}, "apiserver endpoint"},
		{"LB IP = the gateway, bound", IDAddressCollision, func(s *Snapshot) { lbService(s, "192.168.0.1", false); bind(s, "192.168.0.1") },
			[]Severity{Error}, "this node's default gateway"},
		{"no kubeconfig: bound gateway found from the kernel", IDAddressCollision, func(s *Snapshot) {
			bind(s, "192.168.0.1")
			s.Services, s.Nodes, s.EndpointSlices = nil, nil, nil
			s.Missing[SourceServices] = "no kubeconfig"
		}, []Severity{Error}, "owner unknown"},
		{"ordinary externalIP", IDAddressCollision, func(s *Snapshot) { externalIP(s, "198.51.100.1"); bind(s, "198.51.100.1") }, nil, ""},

		// 5: lb-ingress-unbound
		{"LB IP bound", IDLBIngressUnbound, func(s *Snapshot) { lbService(s, "203.0.113.7", true); bind(s, "203.0.113.7") }, nil, ""},
		{"LB IP unbound", IDLBIngressUnbound, func(s *Snapshot) { lbService(s, "203.0.113.7", true) }, []Severity{Info}, "is not bound to kube-ipvs0"},
		{"LB IP ipMode Proxy", IDLBIngressUnbound, func(s *Snapshot) {
			lbService(s, "203.0.113.7", true)
			proxy := corev1.LoadBalancerIPModeProxy
			s.Services[len(s.Services)-1].Status.LoadBalancer.Ingress[0].IPMode = &proxy
		}, nil, ""},

		// 6: drift
		{"sysctls as kube-proxy sets them", IDIPVSSysctl, nil, nil, ""},
		{"expire_nodest_conn reset", IDIPVSSysctl, func(s *Snapshot) { s.Sysctls["net/ipv4/vs/expire_nodest_conn"] = "0" },
			[]Severity{Warning}, "net.ipv4.vs.expire_nodest_conn = 0"},
		{"conn_reuse_mode 1 on 5.4", IDIPVSSysctl, func(s *Snapshot) { s.KernelRelease = "5.4.0-150-generic" },
			[]Severity{Warning}, "conn_reuse_mode = 1"},
		{"not an IPVS node", IDIPVSSysctl, func(s *Snapshot) {
			s.Links = s.Links[:len(s.Links)-1]
			s.Sysctls["net/ipv4/vs/conntrack"] = "0"
		}, nil, ""},
		{"no stray address", IDStrayAddress, nil, nil, ""},
		{"stray address", IDStrayAddress, func(s *Snapshot) { bind(s, "10.96.0.99") }, []Severity{Warning}, "10.96.0.99 bound to kube-ipvs0, no IPVS virtual server"},
		{"every Service programmed", IDNotProgrammed, nil, nil, ""},
		{"virtual server missing", IDNotProgrammed, func(s *Snapshot) { s.IPVS = s.IPVS[:1] }, []Severity{Warning}, "no IPVS virtual server 10.96.0.10:53/UDP"},
	}
	for _, tc := range cases {
		t.Run(tc.id+"/"+tc.name, func(t *testing.T) {
			s := node()
			if tc.mutate != nil {
				tc.mutate(s)
			}
			rep := Run(s)
			var got []Finding
			for _, f := range rep.Findings {
				if f.ID == tc.id {
					got = append(got, f)
				}
			}
			var sevs []Severity
			for _, f := range got {
				sevs = append(sevs, f.Severity)
			}
			if fmt.Sprint(sevs) != fmt.Sprint(tc.want) {
				t.Fatalf("findings %v, want %v:\n%s", sevs, tc.want, render(rep))
			}
			if tc.evidence != "" && !strings.Contains(strings.Join(got[0].Evidence, "\n"), tc.evidence) {
				t.Fatalf("no evidence line contains %q:\n%s", tc.evidence, render(rep))
			}
		})
	}
}

// TestHealthyNode: the fixture node has nothing above info, and every check ran.
func TestHealthyNode(t *testing.T) {
	rep := Run(node())
	if len(rep.Findings) != 0 {
		t.Fatalf("healthy node:\n%s", render(rep))
	}
	for _, c := range rep.Checks {
		if c.Status != "ok" {
			t.Errorf("check %s: %s %s", c.ID, c.Status, c.Reason)
		}
	}
}

// TestSkipped: a source that could not be read skips the checks that need it, and only those.
func TestSkipped(t *testing.T) {
	s := node()
	s.IPTables = nil
	s.Missing[SourceIPTables] = "exec: iptables-save: not found"
	s.Services, s.Nodes, s.EndpointSlices = nil, nil, nil
	for _, src := range []Source{SourceServices, SourceNodes, SourceEndpointSlices} {
		s.Missing[src] = "no kubeconfig"
	}
	rep := Run(s)
	want := map[string]string{
		IDVXLANChecksum: "skipped", IDTunnelDoubleMasquerade: "skipped", IDLBIngressUnbound: "skipped", IDNotProgrammed: "skipped",
		IDLBIngressMartian: "ok", IDAddressCollision: "ok", IDIPVSSysctl: "ok", IDStrayAddress: "ok",
	}
	for _, c := range rep.Checks {
		if want[c.ID] != c.Status {
			t.Errorf("check %s: %s (%s), want %s", c.ID, c.Status, c.Reason, want[c.ID])
		}
		if c.ID == IDVXLANChecksum && !strings.Contains(c.Reason, "iptables-save: not found") {
			t.Errorf("skip reason %q does not say why", c.Reason)
		}
		if c.ID == IDAddressCollision && !strings.Contains(c.Reason, "partial: without services, nodes, endpointslices") {
			t.Errorf("partial reason %q", c.Reason)
		}
	}
}

func render(r Report) string {
	var b strings.Builder
	_ = WriteText(&b, r, false)
	return b.String()
}

func externalIP(s *Snapshot, ip string) {
	svc := service("web", "ext", "10.96.0.30", corev1.ProtocolTCP, 443)
	svc.Spec.ExternalIPs = []string{ip}
	s.Services = append(s.Services, svc)
	s.IPVS = append(s.IPVS, vs("10.96.0.30", 443))
	bind(s, "10.96.0.30")
}

func vs(ip string, port uint16) kipvsVS {
	return kipvsVS{Key: kipvsKey{Address: netip.MustParseAddr(ip), Protocol: "TCP", Port: port}}
}
