//go:build lab

package nftgeneration

import (
	"os/exec"
	"testing"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/nstest"
)

// TestGenerationLab checks, on the real kernel, what the proxier relies on: reads leave the
// generation alone, every committed change through iptables-nft or ip6tables-nft advances it,
// and iptables-save names its nf_tables backend in its header.
func TestGenerationLab(t *testing.T) {
	nstest.Enter(t)
	run := func(args ...string) []byte {
		t.Helper()
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return out
	}
	gen := func() uint32 {
		t.Helper()
		g, err := Netlink{}.Generation()
		if err != nil {
			t.Fatalf("Generation: %v", err)
		}
		return g
	}

	run("iptables", "-w", "-t", "nat", "-N", "KUBE-GEN-TEST") // the backend's first table
	g0 := gen()
	saved := run("iptables-save", "-t", "nat")
	if !IsNFTSave(saved) {
		t.Fatalf("iptables-save does not name the nf_tables backend:\n%s", saved)
	}
	run("iptables", "-w", "-t", "nat", "-S")
	if g := gen(); g != g0 {
		t.Errorf("reads moved the generation from %d to %d", g0, g)
	}

	run("iptables", "-w", "-t", "nat", "-A", "KUBE-GEN-TEST", "-j", "RETURN")
	g1 := gen()
	if g1 == g0 {
		t.Errorf("appending a rule left the generation at %d", g0)
	}
	run("ip6tables", "-w", "-t", "filter", "-N", "KUBE-GEN-TEST")
	g2 := gen()
	if g2 == g1 {
		t.Errorf("an ip6tables change left the generation at %d", g1)
	}
	if !IsNFTSave(run("ip6tables-save", "-t", "filter")) {
		t.Error("ip6tables-save does not name the nf_tables backend")
	}
}
