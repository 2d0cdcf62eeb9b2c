//go:build lab

package ipset

import (
	"fmt"
	"maps"
	"os/exec"
	"testing"

	utilexec "k8s.io/utils/exec"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/nstest"
)

// TestNetlinkEntryCountsLab compares, on the real kernel, the entry counts read over netlink
// with those `ipset list -t` prints, for sets of each type the proxier creates, empty and
// holding entries, in both families.
func TestNetlinkEntryCountsLab(t *testing.T) {
	nstest.Enter(t)
	x := NewExec(utilexec.New())
	if got, err := netlinkEntryCounts(); err != nil || len(got) != 0 {
		t.Fatalf("a namespace without sets: %v, %v; want no sets", got, err)
	}
	ops := []Op{
		{Kind: Create, Set: Set{Name: "KUBE-CLUSTER-IP", Type: HashIPPort, Family: "inet"}},
		{Kind: Create, Set: Set{Name: "KUBE-6-CLUSTER-IP", Type: HashIPPort, Family: "inet6"}},
		{Kind: Create, Set: Set{Name: "KUBE-LOOP-BACK", Type: HashIPPortIP, Family: "inet"}},
		{Kind: Create, Set: Set{Name: "KUBE-NODE-PORT-TCP", Type: BitmapPort, Range: "0-65535"}},
		{Kind: Create, Set: Set{Name: "KUBE-LOAD-BALANCER-SOURCE-CIDR", Type: HashIPPortNet, Family: "inet"}},
		{Kind: Create, Set: Set{Name: "KUBE-EMPTY", Type: HashIP, Family: "inet"}},
	}
	for i := range 300 {
		ops = append(ops,
			Op{Kind: Add, Set: Set{Name: "KUBE-CLUSTER-IP"}, Entry: fmt.Sprintf("10.96.%d.%d,tcp:80", i/250, i%250)},
			Op{Kind: Add, Set: Set{Name: "KUBE-NODE-PORT-TCP"}, Entry: fmt.Sprint(30000 + i)})
	}
	for i := range 7 {
		ops = append(ops,
			Op{Kind: Add, Set: Set{Name: "KUBE-6-CLUSTER-IP"}, Entry: fmt.Sprintf("fd00::%x,udp:53", i+1)},
			Op{Kind: Add, Set: Set{Name: "KUBE-LOOP-BACK"}, Entry: fmt.Sprintf("10.244.0.%d,tcp:8080,10.244.0.%d", i+1, i+1)},
			Op{Kind: Add, Set: Set{Name: "KUBE-LOAD-BALANCER-SOURCE-CIDR"}, Entry: fmt.Sprintf("192.0.2.%d,tcp:443,10.0.%d.0/24", i+1, i)})
	}
	if err := x.Apply(ops); err != nil {
		t.Fatal(err)
	}
	got, err := netlinkEntryCounts()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ipset", "list", "-t").Output()
	if err != nil {
		t.Fatal(err)
	}
	want, err := ParseTerse(string(out))
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, want) || got["KUBE-CLUSTER-IP"] != 300 || got["KUBE-EMPTY"] != 0 || len(got) != 6 {
		t.Errorf("over netlink %v\nipset list -t %v", got, want)
	}
	if via, err := x.EntryCounts(); err != nil || !maps.Equal(via, got) {
		t.Errorf("EntryCounts = %v, %v; want %v", via, err, got)
	}
}
