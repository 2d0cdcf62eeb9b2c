package ipvs

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	utiliptables "k8s.io/kubernetes/pkg/util/iptables"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/forkconfig"
)

const (
	vxlanRule8472  = `-A KUBE-POSTROUTING -p udp -m udp --dport 8472 -m comment --comment "kube-proxy-ipvs VXLAN traffic requiring SNAT without random-fully" -j MASQUERADE`
	vxlanRule4789  = `-A KUBE-POSTROUTING -p udp -m udp --dport 4789 -m comment --comment "kube-proxy-ipvs VXLAN traffic requiring SNAT without random-fully" -j MASQUERADE`
	randomFullyRul = `-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully`
	plainMasqRule  = `-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE`
	// hairpinRule is there because webService has an endpoint on this node; upstream writes
	// it without --random-fully.
	hairpinRule = `-A KUBE-POSTROUTING -m comment --comment "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose" -m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE`
)

// kernelPostrouting is KUBE-POSTROUTING as the fake kernel holds it, after the mark rules.
func (e *env) kernelPostrouting() []string {
	e.t.Helper()
	var saved bytes.Buffer
	if err := e.ipt.FakeIPTables.SaveInto(utiliptables.TableNAT, &saved); err != nil {
		e.t.Fatalf("saving nat: %v", err)
	}
	var out []string
	for _, l := range strings.Split(saved.String(), "\n") {
		if strings.HasPrefix(l, "-A KUBE-POSTROUTING ") && !strings.Contains(l, "-m mark") && !strings.Contains(l, "--xor-mark") {
			out = append(out, l)
		}
	}
	return out
}

func (e *env) wantPostrouting(want ...string) {
	e.t.Helper()
	if got := e.kernelPostrouting(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		e.t.Errorf("KUBE-POSTROUTING in the kernel:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// vxlanSync runs a verification and checks that it cost one read of the VXLAN links,
// counted by the proxier, and exactly writes kernel writes, all of them iptables restores.
func (e *env) vxlanSync(writes int) {
	e.t.Helper()
	e.resetCounts()
	before := e.p.meter.counts()
	e.verifySync()
	if n := e.nd.Count("VXLANPorts"); n != 1 {
		e.t.Errorf("verification read the VXLAN links %d times, want 1", n)
	}
	reads := e.reads()
	if d := e.p.meter.counts().reads - before.reads; d != reads {
		e.t.Errorf("proxier counted %d kernel reads, the fakes saw %d: %s", d, reads, e.ops())
	}
	if e.writes() != writes || e.ipt.writes != writes || e.p.meter.counts().writes-before.writes != writes {
		e.t.Errorf("verification made %d kernel writes (%d iptables), want %d iptables restores: %s", e.writes(), e.ipt.writes, writes, e.ops())
	}
}

// TestVXLANLinksPickedUpAtVerification: in auto mode a VXLAN link that appears after the
// start is masqueraded without --random-fully after the next periodic verification, with
// one iptables restore and no other kernel write; its removal likewise.
func TestVXLANLinksPickedUpAtVerification(t *testing.T) {
	e := newEnv(t)
	if e.p.fork.MasqueradeRandomFully != forkconfig.RandomFullyAuto {
		t.Fatalf("default mode %q, want auto", e.p.fork.MasqueradeRandomFully)
	}
	svc, sl := webService()
	e.start(svc, sl)
	e.wantPostrouting(hairpinRule, randomFullyRul)

	e.nd.AddVXLAN("flannel.1", 0)
	// A sync that does not verify does not look at links.
	e.resetCounts()
	e.sync()
	if n := e.nd.Count("VXLANPorts"); n != 0 || e.writes() != 0 {
		t.Errorf("a sync between verifications read VXLAN links %d times and wrote %d times", n, e.writes())
	}
	e.wantPostrouting(hairpinRule, randomFullyRul)

	e.vxlanSync(1)
	e.wantPostrouting(hairpinRule, vxlanRule8472, randomFullyRul)

	// Unchanged links: nothing to write, and the text is not even recomputed.
	text := &e.p.global.IPTables[0]
	e.vxlanSync(0)
	if &e.p.global.IPTables[0] != text {
		t.Errorf("the iptables text was recomputed although the VXLAN links did not change")
	}

	e.nd.AddVXLAN("vxlan.calico", 4789)
	e.vxlanSync(1)
	e.wantPostrouting(hairpinRule, vxlanRule4789, vxlanRule8472, randomFullyRul)

	if err := e.nd.DeleteLink("flannel.1"); err != nil {
		t.Fatal(err)
	}
	e.vxlanSync(1)
	e.wantPostrouting(hairpinRule, vxlanRule4789, randomFullyRul)

	if err := e.nd.DeleteLink("vxlan.calico"); err != nil {
		t.Fatal(err)
	}
	e.vxlanSync(1)
	e.wantPostrouting(hairpinRule, randomFullyRul)

	// The service is still served throughout.
	if got := e.realServers(webCluster); len(got) != 2 {
		t.Errorf("real servers of %s = %v", webCluster, got)
	}
}

// TestVXLANAtStart: links present when kube-proxy starts are in the first restore.
func TestVXLANAtStart(t *testing.T) {
	e := newEnv(t)
	e.nd.AddVXLAN("flannel.1", 8472)
	svc, sl := webService()
	e.start(svc, sl)
	e.wantPostrouting(hairpinRule, vxlanRule8472, randomFullyRul)
}

// TestVXLANReadFailureKeepsRules: a failed read changes nothing and fails nothing.
func TestVXLANReadFailureKeepsRules(t *testing.T) {
	e := newEnv(t)
	e.nd.AddVXLAN("flannel.1", 0)
	svc, sl := webService()
	e.start(svc, sl)
	e.nd.InjectError("VXLANPorts", errors.New("netlink dump interrupted"))
	e.vxlanSync(0)
	e.wantPostrouting(hairpinRule, vxlanRule8472, randomFullyRul)
}

// TestVXLANIgnoredUnlessAuto: always and never do not read links at all.
func TestVXLANIgnoredUnlessAuto(t *testing.T) {
	for mode, want := range map[forkconfig.RandomFully]string{
		forkconfig.RandomFullyAlways: randomFullyRul,
		forkconfig.RandomFullyNever:  plainMasqRule,
	} {
		t.Run(string(mode), func(t *testing.T) {
			e := newEnv(t)
			e.p.fork.MasqueradeRandomFully = mode
			e.nd.AddVXLAN("flannel.1", 0)
			svc, sl := webService()
			e.start(svc, sl)
			e.resetCounts()
			e.verifySync()
			if n := e.nd.Count("VXLANPorts"); n != 0 || e.writes() != 0 {
				t.Errorf("%s: read VXLAN links %d times, %d writes: %s", mode, n, e.writes(), e.ops())
			}
			e.wantPostrouting(hairpinRule, want)
		})
	}
}
