package desired

import (
	"reflect"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	proxyutil "k8s.io/kubernetes/pkg/proxy/util"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/forkconfig"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/objects"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/internal/fixture"
)

// The expected texts are derived from upstream's writeIptablesRules and
// createAndLinkKubeChain: nat chains, nat rules, filter chains, filter rules.

const natHeader = `*nat
:KUBE-SERVICES - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-NODE-PORT - [0:0]
:KUBE-LOAD-BALANCER - [0:0]
:KUBE-MARK-MASQ - [0:0]
`

const filterHeader = `*filter
:KUBE-FORWARD - [0:0]
:KUBE-NODE-PORT - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SOURCE-RANGES-FIREWALL - [0:0]
:KUBE-IPVS-FILTER - [0:0]
:KUBE-IPVS-OUT-FILTER - [0:0]
`

func cfg4() *GlobalConfig {
	return &GlobalConfig{
		Family:        v1.IPv4Protocol,
		MasqueradeBit: 14,
		LocalDetector: proxyutil.NewDetectLocalByCIDR("10.244.0.0/16"),
	}
}

func none(string) bool { return false }
func all(string) bool  { return true }

func only4(names ...string) func(string) bool {
	return func(n string) bool {
		for _, x := range names {
			if x == n {
				return true
			}
		}
		return false
	}
}

func checkText(t *testing.T, got []byte, want string) {
	t.Helper()
	if string(got) == want {
		return
	}
	g, w := strings.Split(string(got), "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			t.Errorf("line %d\n got %q\nwant %q", i+1, gl, wl)
			break
		}
	}
	t.Errorf("full text:\n%s", got)
}

func TestRulesOmitEmptySets(t *testing.T) {
	got := DesiredGlobal(cfg4(), none)
	checkText(t, got.IPTables, natHeader+`-A KUBE-SERVICES -s 127.0.0.0/8 -j RETURN
-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT
-A KUBE-LOAD-BALANCER -j KUBE-MARK-MASQ
-A KUBE-POSTROUTING -m mark ! --mark 0x00004000/0x00004000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x00004000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-MARK-MASQ -j MARK --or-mark 0x00004000
COMMIT
`+filterHeader+`-A KUBE-SOURCE-RANGES-FIREWALL -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x00004000/0x00004000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A KUBE-NODE-PORT -m comment --comment "Kubernetes health check node port" -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j ACCEPT
-A KUBE-IPVS-FILTER -m set --match-set KUBE-LOAD-BALANCER dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m set --match-set KUBE-CLUSTER-IP dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m set --match-set KUBE-EXTERNAL-IP dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m set --match-set KUBE-EXTERNAL-IP-LOCAL dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j RETURN
-A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set KUBE-IPVS-IPS dst -j REJECT
COMMIT
`)
}

func TestRulesEverySetNonEmpty(t *testing.T) {
	cfg := cfg4()
	cfg.NodeBlockedLoadBalancers = []objects.Key{
		fixture.Key("203.0.113.9", objects.UDP, 53),
		fixture.Key("203.0.113.7", objects.TCP, 80),
		fixture.Key("203.0.113.7", objects.TCP, 80),
	}
	checkText(t, DesiredGlobal(cfg, all).IPTables, natHeader+`-A KUBE-SERVICES -s 127.0.0.0/8 -j RETURN
-A KUBE-POSTROUTING -m comment --comment "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose" -m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE
-A KUBE-SERVICES -m comment --comment "Kubernetes service lb portal" -m set --match-set KUBE-LOAD-BALANCER dst,dst -j KUBE-LOAD-BALANCER
-A KUBE-LOAD-BALANCER -m comment --comment "Kubernetes service load balancer ip + port with externalTrafficPolicy=local" -m set --match-set KUBE-LOAD-BALANCER-LOCAL dst,dst -j RETURN
-A KUBE-NODE-PORT -p tcp -m comment --comment "Kubernetes nodeport TCP port with externalTrafficPolicy=local" -m set --match-set KUBE-NODE-PORT-LOCAL-TCP dst -j RETURN
-A KUBE-NODE-PORT -p tcp -m comment --comment "Kubernetes nodeport TCP port for masquerade purpose" -m set --match-set KUBE-NODE-PORT-TCP dst -j KUBE-MARK-MASQ
-A KUBE-NODE-PORT -p udp -m comment --comment "Kubernetes nodeport UDP port with externalTrafficPolicy=local" -m set --match-set KUBE-NODE-PORT-LOCAL-UDP dst -j RETURN
-A KUBE-NODE-PORT -p udp -m comment --comment "Kubernetes nodeport UDP port for masquerade purpose" -m set --match-set KUBE-NODE-PORT-UDP dst -j KUBE-MARK-MASQ
-A KUBE-NODE-PORT -p sctp -m comment --comment "Kubernetes nodeport SCTP port with externalTrafficPolicy=local with type 'hash ip:port'" -m set --match-set KUBE-NODE-PORT-LOCAL-SCTP-HASH dst,dst -j RETURN
-A KUBE-NODE-PORT -p sctp -m comment --comment "Kubernetes nodeport SCTP port for masquerade purpose with type 'hash ip:port'" -m set --match-set KUBE-NODE-PORT-SCTP-HASH dst,dst -j KUBE-MARK-MASQ
-A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP dst,dst ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ
-A KUBE-SERVICES -m comment --comment "Kubernetes service external ip + port for masquerade and filter purpose" -m set --match-set KUBE-EXTERNAL-IP dst,dst -j KUBE-MARK-MASQ
-A KUBE-SERVICES -m comment --comment "Kubernetes service external ip + port for masquerade and filter purpose" -m set --match-set KUBE-EXTERNAL-IP dst,dst -m physdev ! --physdev-is-in -m addrtype ! --src-type LOCAL -j ACCEPT
-A KUBE-SERVICES -m comment --comment "Kubernetes service external ip + port for masquerade and filter purpose" -m set --match-set KUBE-EXTERNAL-IP dst,dst -m addrtype --dst-type LOCAL -j ACCEPT
-A KUBE-SERVICES -m comment --comment "Kubernetes service external ip + port with externalTrafficPolicy=local" -m set --match-set KUBE-EXTERNAL-IP-LOCAL dst,dst -m physdev ! --physdev-is-in -m addrtype ! --src-type LOCAL -j ACCEPT
-A KUBE-SERVICES -m comment --comment "Kubernetes service external ip + port with externalTrafficPolicy=local" -m set --match-set KUBE-EXTERNAL-IP-LOCAL dst,dst -m addrtype --dst-type LOCAL -j ACCEPT
-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT
-A KUBE-LOAD-BALANCER -j KUBE-MARK-MASQ
-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT
-A KUBE-SERVICES -m set --match-set KUBE-LOAD-BALANCER dst,dst -j ACCEPT
-A KUBE-POSTROUTING -m mark ! --mark 0x00004000/0x00004000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x00004000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-MARK-MASQ -j MARK --or-mark 0x00004000
COMMIT
`+filterHeader+`-A KUBE-PROXY-FIREWALL -m comment --comment "Kubernetes service load balancer ip + port for load balancer with sourceRange" -m set --match-set KUBE-LOAD-BALANCER-FW dst,dst -j KUBE-SOURCE-RANGES-FIREWALL
-A KUBE-SOURCE-RANGES-FIREWALL -m comment --comment "Kubernetes service load balancer ip + port + source cidr for packet filter purpose" -m set --match-set KUBE-LOAD-BALANCER-SOURCE-CIDR dst,dst,src -j RETURN
-A KUBE-SOURCE-RANGES-FIREWALL -m comment --comment "Kubernetes service load balancer ip + port + source IP for packet filter purpose" -m set --match-set KUBE-LOAD-BALANCER-SOURCE-IP dst,dst,src -j RETURN
-A KUBE-SOURCE-RANGES-FIREWALL -j DROP
-A KUBE-IPVS-OUT-FILTER -s 203.0.113.7 -m ipvs --vaddr 203.0.113.7 --vproto tcp --vport 80 -j DROP
-A KUBE-IPVS-OUT-FILTER -s 203.0.113.9 -m ipvs --vaddr 203.0.113.9 --vproto udp --vport 53 -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x00004000/0x00004000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A KUBE-NODE-PORT -m comment --comment "Kubernetes health check node port" -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j ACCEPT
-A KUBE-IPVS-FILTER -m set --match-set KUBE-LOAD-BALANCER dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m set --match-set KUBE-CLUSTER-IP dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m set --match-set KUBE-EXTERNAL-IP dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m set --match-set KUBE-EXTERNAL-IP-LOCAL dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j RETURN
-A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set KUBE-IPVS-IPS dst -j REJECT
COMMIT
`)
}

// clusterIPRule is the KUBE-CLUSTER-IP masquerade rule of a text, or "".
func clusterIPRule(text []byte) string {
	for _, l := range strings.Split(string(text), "\n") {
		if strings.Contains(l, "--match-set KUBE-CLUSTER-IP") && strings.HasSuffix(l, "-j KUBE-MARK-MASQ") {
			return l
		}
	}
	return ""
}

func TestMasqueradeAll(t *testing.T) {
	cfg := cfg4()
	cfg.MasqueradeAll = true
	got := clusterIPRule(DesiredGlobal(cfg, only4("KUBE-CLUSTER-IP")).IPTables)
	want := `-A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestClusterIPMasqueradeByLocalDetector(t *testing.T) {
	for _, tc := range []struct {
		name     string
		detector proxyutil.LocalTrafficDetector
		want     string
	}{
		{"cluster CIDR", proxyutil.NewDetectLocalByCIDR("10.244.0.0/16"), "dst,dst ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ"},
		{"bridge", proxyutil.NewDetectLocalByBridgeInterface("cbr0"), "dst,dst ! -i cbr0 -j KUBE-MARK-MASQ"},
		{"interface prefix", proxyutil.NewDetectLocalByInterfaceNamePrefix("veth"), "dst,dst ! -i veth+ -j KUBE-MARK-MASQ"},
		// Without a detector, node-originated traffic sourced from a VIP is masqueraded.
		{"none", proxyutil.NewNoOpLocalDetector(), "src,dst -j KUBE-MARK-MASQ"},
		{"nil", nil, "src,dst -j KUBE-MARK-MASQ"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := cfg4()
			cfg.LocalDetector = tc.detector
			got := clusterIPRule(DesiredGlobal(cfg, only4("KUBE-CLUSTER-IP")).IPTables)
			want := `-A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP ` + tc.want
			if got != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}

func TestRulesIPv6(t *testing.T) {
	cfg := &GlobalConfig{Family: v1.IPv6Protocol, MasqueradeBit: 14, LocalDetector: proxyutil.NewDetectLocalByCIDR("fd00:244::/56")}
	cfg.NodeBlockedLoadBalancers = []objects.Key{fixture.Key("2001:db8::7", objects.TCP, 80)}
	text := string(DesiredGlobal(cfg, only4("KUBE-6-CLUSTER-IP", "KUBE-6-LOAD-BALANCER-SOURCE-CID")).IPTables)
	for _, want := range []string{
		"-A KUBE-SERVICES -s ::1/128 -j RETURN\n",
		`-m set --match-set KUBE-6-CLUSTER-IP dst,dst ! -s fd00:244::/56 -j KUBE-MARK-MASQ` + "\n",
		`-m set --match-set KUBE-6-LOAD-BALANCER-SOURCE-CID dst,dst,src -j RETURN` + "\n",
		"-A KUBE-IPVS-OUT-FILTER -s 2001:db8::7 -m ipvs --vaddr 2001:db8::7 --vproto tcp --vport 80 -j DROP\n",
		"-A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set KUBE-6-IPVS-IPS dst -j REJECT\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in\n%s", want, text)
		}
	}
	if strings.Contains(text, "--match-set KUBE-CLUSTER-IP") || strings.Contains(text, "127.0.0.0/8") {
		t.Errorf("IPv4 names or addresses in IPv6 text:\n%s", text)
	}
}

func TestMasqueradeMark(t *testing.T) {
	for bit, want := range map[int]string{14: "0x00004000", 0: "0x00000001", 31: "0x80000000"} {
		if got := MasqueradeMark(bit); got != want {
			t.Errorf("MasqueradeMark(%d) = %s, want %s", bit, got, want)
		}
	}
}

func TestJumpRules(t *testing.T) {
	var got []string
	for _, j := range JumpRules() {
		got = append(got, j.Table+" "+j.SourceChain+" "+strings.Join(j.Args(), " "))
	}
	want := []string{
		"nat OUTPUT -m comment --comment kubernetes service portals -j KUBE-SERVICES",
		"nat PREROUTING -m comment --comment kubernetes service portals -j KUBE-SERVICES",
		"nat POSTROUTING -m comment --comment kubernetes postrouting rules -j KUBE-POSTROUTING",
		"filter FORWARD -m comment --comment kubernetes forwarding rules -j KUBE-FORWARD",
		"filter INPUT -m comment --comment kubernetes health check rules -j KUBE-NODE-PORT",
		"filter INPUT -m comment --comment kube-proxy firewall rules -j KUBE-PROXY-FIREWALL",
		"filter FORWARD -m comment --comment kube-proxy firewall rules -j KUBE-PROXY-FIREWALL",
		"filter INPUT -m comment --comment kubernetes ipvs access filter -j KUBE-IPVS-FILTER",
		"filter OUTPUT -m comment --comment kubernetes ipvs access filter -j KUBE-IPVS-OUT-FILTER",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("jump rules\n got %q\nwant %q", got, want)
	}
}

func TestKubeChainsMatchRestoreText(t *testing.T) {
	text := string(DesiredGlobal(cfg4(), none).IPTables)
	for _, c := range kubeChains {
		header := map[string]string{TableNAT: natHeader, TableFilter: filterHeader}[c.Table]
		if !strings.Contains(header, ":"+c.Chain+" - [0:0]\n") || !strings.Contains(text, header) {
			t.Errorf("%s/%s not declared", c.Table, c.Chain)
		}
	}
}

// TestDesiredStateFeedsRules runs a service through DesiredServicePort and uses its entries
// as the set contents DesiredGlobal asks about, as the reconciler will.
func TestDesiredStateFeedsRules(t *testing.T) {
	svc := fixture.Service("web", "10.96.0.10", fixture.LoadBalancer(30080, v1.LoadBalancerIngress{IP: "203.0.113.7"}),
		func(s *v1.Service) { s.Spec.LoadBalancerSourceRanges = []string{"198.51.100.0/24"} })
	in := only(t, v1.IPv4Protocol, svc)
	ctx := ctx4()
	st := DesiredServicePort(ctx, in)
	cfg := cfg4()
	cfg.NodeBlockedLoadBalancers = NodeBlockedLoadBalancers(ctx, in)
	text := string(DesiredGlobal(cfg, func(n string) bool { return len(st.SetEntries[n]) > 0 }).IPTables)
	for _, want := range []string{
		"--match-set KUBE-LOAD-BALANCER-FW dst,dst -j KUBE-SOURCE-RANGES-FIREWALL\n",
		"--match-set KUBE-LOAD-BALANCER-SOURCE-CIDR dst,dst,src -j RETURN\n",
		"--match-set KUBE-NODE-PORT-TCP dst -j KUBE-MARK-MASQ\n",
		"-A KUBE-IPVS-OUT-FILTER -s 203.0.113.7 -m ipvs --vaddr 203.0.113.7 --vproto tcp --vport 80 -j DROP\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q", want)
		}
	}
	for _, absent := range []string{"KUBE-LOAD-BALANCER-SOURCE-IP dst", "KUBE-LOOP-BACK", "KUBE-NODE-PORT-UDP"} {
		if strings.Contains(text, absent) {
			t.Errorf("unexpected %q", absent)
		}
	}
}

// postrouting is the KUBE-POSTROUTING part of a restore text, one rule a line.
func postrouting(text []byte) string {
	var out []string
	for _, l := range strings.Split(string(text), "\n") {
		if strings.HasPrefix(l, "-A KUBE-POSTROUTING ") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestRulesRandomFully: the KUBE-POSTROUTING rules in each --masquerade-random-fully mode,
// with and without VXLAN links (and the hairpin rule, which never has --random-fully).
func TestRulesRandomFully(t *testing.T) {
	const (
		hairpin   = `-A KUBE-POSTROUTING -m comment --comment "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose" -m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE`
		unmarked  = "-A KUBE-POSTROUTING -m mark ! --mark 0x00004000/0x00004000 -j RETURN"
		clear     = "-A KUBE-POSTROUTING -j MARK --xor-mark 0x00004000"
		random    = `-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully`
		plain     = `-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE`
		vxlan4789 = `-A KUBE-POSTROUTING -p udp -m udp --dport 4789 -m comment --comment "kube-proxy-ipvs VXLAN traffic requiring SNAT without random-fully" -j MASQUERADE`
		vxlan8472 = `-A KUBE-POSTROUTING -p udp -m udp --dport 8472 -m comment --comment "kube-proxy-ipvs VXLAN traffic requiring SNAT without random-fully" -j MASQUERADE`
	)
	upstream := strings.Join([]string{hairpin, unmarked, clear, random}, "\n")
	for _, tc := range []struct {
		name  string
		mode  forkconfig.RandomFully
		ports []uint16
		want  []string
	}{
		{"unset is upstream", "", []uint16{8472}, []string{hairpin, unmarked, clear, random}},
		{"always", forkconfig.RandomFullyAlways, nil, []string{hairpin, unmarked, clear, random}},
		{"always ignores VXLAN", forkconfig.RandomFullyAlways, []uint16{8472}, []string{hairpin, unmarked, clear, random}},
		{"never", forkconfig.RandomFullyNever, nil, []string{hairpin, unmarked, clear, plain}},
		{"never with VXLAN", forkconfig.RandomFullyNever, []uint16{4789, 8472}, []string{hairpin, unmarked, clear, plain}},
		{"auto without VXLAN is always", forkconfig.RandomFullyAuto, nil, []string{hairpin, unmarked, clear, random}},
		{"auto flannel", forkconfig.RandomFullyAuto, []uint16{8472}, []string{hairpin, unmarked, clear, vxlan8472, random}},
		{"auto sorted and unique", forkconfig.RandomFullyAuto, []uint16{8472, 4789, 8472}, []string{hairpin, unmarked, clear, vxlan4789, vxlan8472, random}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := cfg4()
			cfg.RandomFully, cfg.VXLANPorts = tc.mode, tc.ports
			got := DesiredGlobal(cfg, only4(SetLoopBack))
			if want := strings.Join(tc.want, "\n"); postrouting(got.IPTables) != want {
				t.Errorf("KUBE-POSTROUTING\n got:\n%s\nwant:\n%s", postrouting(got.IPTables), want)
			}
			// Nothing else differs from upstream's text.
			cfg.RandomFully, cfg.VXLANPorts = forkconfig.RandomFullyAlways, nil
			ref := DesiredGlobal(cfg, only4(SetLoopBack))
			if postrouting(ref.IPTables) != upstream {
				t.Fatalf("always is not upstream's text:\n%s", postrouting(ref.IPTables))
			}
			strip := func(b []byte) string {
				var out []string
				for _, l := range strings.Split(string(b), "\n") {
					if !strings.HasPrefix(l, "-A KUBE-POSTROUTING ") {
						out = append(out, l)
					}
				}
				return strings.Join(out, "\n")
			}
			if strip(got.IPTables) != strip(ref.IPTables) {
				t.Errorf("rules outside KUBE-POSTROUTING differ from always:\n%s", got.IPTables)
			}
		})
	}
}
