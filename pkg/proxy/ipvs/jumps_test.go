package ipvs

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	utiliptables "k8s.io/kubernetes/pkg/util/iptables"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/desired"
)

// builtinChain is the rules of a built-in chain in the fake, as iptables-save prints them.
func (e *env) builtinChain(table, chain string) []string {
	var saved bytes.Buffer
	_ = e.ipt.FakeIPTables.SaveInto(utiliptables.Table(table), &saved)
	var rules []string
	for _, l := range strings.Split(saved.String(), "\n") {
		if strings.HasPrefix(l, "-A "+chain+" ") {
			rules = append(rules, l)
		}
	}
	return rules
}

// TestJumpsInOneRestore: a fresh node gets every jump, in upstream's order, from the one
// iptables-restore that writes our chains; no EnsureRule process launches.
func TestJumpsInOneRestore(t *testing.T) {
	e := newEnv(t)
	svc, sl := webService()
	e.start(svc, sl)
	if e.ipt.writes != 1 {
		t.Errorf("iptables writes = %d, want one restore", e.ipt.writes)
	}
	// The fake saves an inserted rule as its words joined by spaces (iptables-save would
	// quote the comments).
	want := []string{
		`-A INPUT -m comment --comment kubernetes ipvs access filter -j KUBE-IPVS-FILTER`,
		`-A INPUT -m comment --comment kube-proxy firewall rules -j KUBE-PROXY-FIREWALL`,
		`-A INPUT -m comment --comment kubernetes health check rules -j KUBE-NODE-PORT`,
	}
	if got := e.builtinChain(desired.TableFilter, "INPUT"); !slices.Equal(got, want) {
		t.Errorf("INPUT:\n got %q\nwant %q (EnsureRule(Prepend) in upstream's order)", got, want)
	}
}

// TestDeletedJumpRestored: a jump someone deleted comes back at the next verification, once,
// without duplicating the others; a restart that finds them all adds none.
func TestDeletedJumpRestored(t *testing.T) {
	e := newEnv(t)
	svc, sl := webService()
	e.start(svc, sl)
	j := desired.JumpRules()[1] // nat PREROUTING
	if err := e.ipt.FakeIPTables.DeleteRule(utiliptables.Table(j.Table), utiliptables.Chain(j.SourceChain), j.Args()...); err != nil {
		t.Fatal(err)
	}
	e.resetCounts()
	e.verifySync()
	if got := e.builtinChain(desired.TableNAT, "PREROUTING"); len(got) != 1 {
		t.Errorf("PREROUTING after repair: %q, want the one jump", got)
	}
	if e.ipt.writes != 1 {
		t.Errorf("repair took %d iptables writes, want 1", e.ipt.writes)
	}

	second := newEnv(t, func(_ *kubeproxyconfig.KubeProxyConfiguration, s *env) {
		s.ipvs, s.nd, s.ipset, s.ipt = e.ipvs, e.nd, e.ipset, e.ipt
	})
	second.start(svc, sl)
	for _, c := range []struct{ table, chain string }{{desired.TableNAT, "OUTPUT"}, {desired.TableNAT, "PREROUTING"}, {desired.TableFilter, "INPUT"}, {desired.TableFilter, "FORWARD"}} {
		rules := e.builtinChain(c.table, c.chain)
		if len(rules) != len(slices.Compact(slices.Sorted(slices.Values(rules)))) {
			t.Errorf("%s/%s holds a duplicate after a restart: %q", c.table, c.chain, rules)
		}
	}
}
