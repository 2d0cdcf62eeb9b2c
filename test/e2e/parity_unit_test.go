package e2e

// Host-side tests of the differential test's generator, normalization and comparison (no lab
// needed): go test ./test/e2e -run 'TestParity(Gen|Normalize|Diff)'.

import (
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/framework"
	corev1 "k8s.io/api/core/v1"
)

func parityWorldJSON(t *testing.T, w *parityWorld) string {
	t.Helper()
	b, err := json.Marshal(struct {
		S, E, L, Z any
	}{w.Services, w.Slices, w.LBIPs, w.Zones})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParityGenDeterministic(t *testing.T) {
	run := func(seed uint64) (string, string) {
		g := newParityGen(seed, "ns")
		a := parityWorldJSON(t, g.Initial())
		var ch []parityChange
		for i := 0; i < 3; i++ {
			ch = append(ch, g.Change(i == 0)...)
		}
		b, _ := json.Marshal(ch)
		return a, string(b) + parityWorldJSON(t, g.w)
	}
	a1, b1 := run(42)
	a2, b2 := run(42)
	if a1 != a2 || b1 != b2 {
		t.Fatal("seed 42 generated two different worlds")
	}
	a3, _ := run(43)
	if a1 == a3 {
		t.Fatal("seeds 42 and 43 generated the same world")
	}
}

// Over a few seeds, the generator covers every Service type, protocol, policy, condition and
// topology kind, and never an address the fork refuses by design.
func TestParityGenCoverage(t *testing.T) {
	seen := map[string]bool{}
	mark := func(k string) { seen[k] = true }
	_, svcCIDR, _ := net.ParseCIDR(framework.ServiceCIDR)
	_, nodeNet, _ := net.ParseCIDR("172.30.0.0/24")
	_, podNet, _ := net.ParseCIDR(framework.ClusterCIDR)
	_, svcCIDR6, _ := net.ParseCIDR(framework.ServiceCIDRv6)
	_, nodeNet6, _ := net.ParseCIDR(framework.NodeNetV6Prefix + "/64")
	_, podNet6, _ := net.ParseCIDR(framework.ClusterCIDRv6)
	for seed := uint64(1); seed <= 10; seed++ {
		g := newParityGen(seed, "ns")
		w := g.Initial()
		if n := len(w.Services); n < 30 || n > 60 {
			t.Errorf("seed %d: %d Services, want 30-60", seed, n)
		}
		for phase := 0; phase < 4; phase++ {
			ips := map[string]string{}
			for name, s := range w.Services {
				switch {
				case s.Spec.Type == corev1.ServiceTypeExternalName:
					mark("ExternalName")
				case s.Spec.ClusterIP == corev1.ClusterIPNone:
					mark("Headless")
				default:
					mark(string(s.Spec.Type))
				}
				for _, p := range s.Spec.Ports {
					mark(string(p.Protocol))
				}
				mark("etp=" + string(s.Spec.ExternalTrafficPolicy))
				mark(fmt.Sprint("families=", s.Spec.IPFamilies))
				if s.Spec.InternalTrafficPolicy != nil {
					mark("itp=" + string(*s.Spec.InternalTrafficPolicy))
				}
				mark("affinity=" + string(s.Spec.SessionAffinity))
				if s.Spec.TrafficDistribution != nil {
					mark("td=" + *s.Spec.TrafficDistribution)
				}
				if s.Annotations[parityTopologyMode] != "" {
					mark("topology-mode")
				}
				if len(s.Spec.LoadBalancerSourceRanges) > 0 {
					mark("sourceRanges")
				}
				for _, c := range s.Spec.LoadBalancerSourceRanges {
					if strings.Contains(c, ":") {
						mark("sourceRanges IPv6")
					}
				}
				addrs := append([]string(nil), s.Spec.ExternalIPs...)
				addrs = append(addrs, w.LBIPs[name]...)
				if len(s.Spec.ExternalIPs) > 0 {
					mark("externalIPs")
				}
				if len(w.LBIPs[name]) > 0 {
					mark("lbIngress")
				}
				if s.Annotations[parityBindLBIngress] == "true" {
					mark("bind=true")
				}
				for ip, mode := range w.LBModes[name] {
					mark("ipMode=" + string(mode))
					if mode == corev1.LoadBalancerIPModeProxy && s.Annotations[parityBindLBIngress] == "true" {
						t.Errorf("seed %d: Service %s binds its ipMode Proxy ingress %s by annotation, which the fork does by design", seed, name, ip)
					}
				}
				for _, a := range addrs {
					ip := net.ParseIP(a)
					if ip == nil || svcCIDR.Contains(ip) || nodeNet.Contains(ip) || podNet.Contains(ip) ||
						svcCIDR6.Contains(ip) || nodeNet6.Contains(ip) || podNet6.Contains(ip) {
						t.Errorf("seed %d: Service %s has address %s, which the fork refuses by design", seed, name, a)
					}
					if ip != nil && ip.To4() == nil {
						mark("IPv6 address")
						if !hasIPv6(s) {
							t.Errorf("seed %d: Service %s has IPv6 address %s but no IPv6 family", seed, name, a)
						}
					}
					if o, dup := ips[a]; dup {
						t.Errorf("seed %d: %s on Services %s and %s", seed, a, o, name)
					}
					ips[a] = name
				}
				for _, sl := range w.Slices[name] {
					mark("slice " + string(sl.AddressType))
					for _, e := range sl.Endpoints {
						c := e.Conditions
						mark("cond=" + parityBool(c.Ready) + parityBool(c.Serving) + parityBool(c.Terminating))
						if c.Terminating != nil && *c.Terminating {
							mark("terminating")
						}
						if e.NodeName != nil {
							mark("on " + *e.NodeName)
						}
						if e.Hints != nil {
							mark("hints")
						}
					}
				}
			}
			g.Change(phase == 0)
		}
	}
	for _, k := range []string{"ClusterIP", "NodePort", "LoadBalancer", "ExternalName", "Headless", "TCP", "UDP", "SCTP",
		"etp=Local", "etp=Cluster", "itp=Local", "itp=Cluster", "affinity=ClientIP", "td=PreferSameZone", "td=PreferSameNode",
		"td=PreferClose", "topology-mode", "sourceRanges", "externalIPs", "lbIngress", "ipMode=VIP", "ipMode=Proxy", "bind=true", "terminating", "on node1", "on node2",
		"hints", "cond=TTF", "cond=FFT", "cond=FTT", "cond=---",
		"families=[]", "families=[IPv6]", "families=[IPv4 IPv6]", "families=[IPv6 IPv4]", "IPv6 address", "sourceRanges IPv6",
		"slice IPv4", "slice IPv6"} {
		if !seen[k] {
			t.Errorf("never generated: %s", k)
		}
	}
}

// An address in two slices of one Service is generated only where kube-proxy's choice between
// the two entries does not depend on the order it reads the slices (seed 101 of an earlier
// generator had two terminating entries, and upstream and ours kept different ones).
func TestParityGenDuplicateAddresses(t *testing.T) {
	dups := 0
	for seed := uint64(1); seed <= 300; seed++ {
		g := newParityGen(seed, "ns")
		w := g.Initial()
		for phase := 0; phase < 3; phase++ {
			for name := range w.Services {
				term := map[string][]bool{} // address -> terminating, per slice it is in
				for _, sl := range w.Slices[name] {
					for _, e := range sl.Endpoints {
						term[e.Addresses[0]] = append(term[e.Addresses[0]], e.Conditions.Terminating != nil && *e.Conditions.Terminating)
					}
				}
				for a, ts := range term {
					if len(ts) < 2 {
						continue
					}
					dups++
					if ts[0] == ts[1] {
						t.Errorf("seed %d phase %d: Service %s has %s in two slices, both terminating=%v", seed, phase, name, a, ts[0])
					}
				}
			}
			g.Change(phase == 0)
		}
	}
	if dups == 0 {
		t.Error("no address in two slices of a Service was generated: the case is not covered")
	}
}

func parityBool(b *bool) string {
	switch {
	case b == nil:
		return "-"
	case *b:
		return "T"
	}
	return "F"
}

func TestParityNormalize(t *testing.T) {
	save := `# Generated by iptables-save
*nat
:PREROUTING ACCEPT [10:600]
:OUTPUT ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-MARK-MASQ - [0:0]
:OTHER - [0:0]
[5:300] -A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A PREROUTING -j OTHER
-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-SERVICES -j KUBE-MARK-MASQ
COMMIT
*filter
:KUBE-IPVS-OUT-FILTER - [0:0]
-A KUBE-IPVS-OUT-FILTER -s 192.168.100.9/32 -m ipvs --vproto 6 --vaddr 192.168.100.9 --vport 80 -j DROP
COMMIT
`
	got := normalizeKubeChains("iptables", save)
	want := []string{
		"iptables nat KUBE-SERVICES chain",
		"iptables nat KUBE-MARK-MASQ chain",
		`iptables nat PREROUTING 001 -A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`,
		"iptables nat KUBE-SERVICES 001 -A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT",
		"iptables nat KUBE-MARK-MASQ 001 -A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
		"iptables nat KUBE-SERVICES 002 -A KUBE-SERVICES -j KUBE-MARK-MASQ",
		"iptables filter KUBE-IPVS-OUT-FILTER chain",
		"iptables filter KUBE-IPVS-OUT-FILTER --- -A KUBE-IPVS-OUT-FILTER -s 192.168.100.9/32 -m ipvs --vproto 6 --vaddr 192.168.100.9 --vport 80 -j DROP",
	}
	if !slices.Equal(got, want) {
		t.Errorf("normalizeKubeChains:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	ipset := "create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x1234\nadd KUBE-CLUSTER-IP 10.96.0.1,tcp:443\ncreate OTHER hash:ip\nadd OTHER 1.2.3.4\n"
	gotS := normalizeIPSet(ipset)
	wantS := []string{"ipset KUBE-CLUSTER-IP create hash:ip,port family inet hashsize 1024 maxelem 65536 bucketsize 12",
		"ipset KUBE-CLUSTER-IP add 10.96.0.1,tcp:443"}
	if !slices.Equal(gotS, wantS) {
		t.Errorf("normalizeIPSet: %q, want %q", gotS, wantS)
	}
	d := parityDump(&framework.ParityRaw{IPVS: []string{"vs TCP 10.96.0.1:443 sched=rr flags=0x2 timeout=0 netmask=0xffffffff"},
		IPVSConf: "tcp=900 tcpfin=120 udp=300", IPSet: ipset, IPTables: save, Addrs: []string{"addr kube-ipvs0 10.96.0.1/32"},
		Sysctls: []string{"net.ipv4.vs.conntrack=1"}})
	if !slices.IsSorted(d) || len(d) != 1+1+2+8+1+1 {
		t.Errorf("parityDump: %d lines, sorted %v:\n%s", len(d), slices.IsSorted(d), strings.Join(d, "\n"))
	}
	missing, stale := parityPresence(d, []string{"TCP 10.96.0.1:443", "UDP 10.96.0.10:53"}, []string{"TCP 10.96.0.1:443"})
	if !slices.Equal(missing, []string{"UDP 10.96.0.10:53"}) || !slices.Equal(stale, []string{"TCP 10.96.0.1:443"}) {
		t.Errorf("parityPresence: missing %v stale %v", missing, stale)
	}
}

func TestParityDiff(t *testing.T) {
	saved := parityAllowed
	defer func() { parityAllowed = saved }()
	parityAllowed = append(append([]parityAllowedDiff(nil), saved...), parityAllowedDiff{
		re: regexp.MustCompile(`^\+ sysctl test\.only\.ours=`), reason: "test entry", doc: "none"})
	up := []string{"a", "b", "b", "sysctl x=1"}
	ours := []string{"a", "b", "c", "sysctl test.only.ours=1", "sysctl x=1"}
	unexpected, allowed := parityDiff(up, ours)
	if !slices.Equal(unexpected, []string{"- b", "+ c"}) && !slices.Equal(unexpected, []string{"+ c", "- b"}) {
		t.Errorf("unexpected = %q", unexpected)
	}
	if len(allowed["test entry"]) != 1 {
		t.Errorf("allowed = %v", allowed)
	}
	for _, a := range saved {
		if a.reason == "" || !strings.HasPrefix(a.doc, "docs/") {
			t.Errorf("allowed difference %q: needs a reason and the doc that explains it", a.re)
		}
	}
}
