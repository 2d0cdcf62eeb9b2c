//go:build lab

package ipset

import (
	"fmt"
	"maps"
	"os/exec"
	"reflect"
	"testing"

	utilexec "k8s.io/utils/exec"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/nstest"
)

// populate creates, in the test's network namespace, every set type the proxier creates in both
// families, an empty set, host and network entries of every protocol, and sets too large for
// one netlink message (11 sets; KUBE-CLUSTER-IP holds 3000 entries).
func populate(t *testing.T, x *Kernel) {
	t.Helper()
	ops := []Op{
		{Kind: Create, Set: Set{Name: "KUBE-CLUSTER-IP", Type: HashIPPort, Family: FamilyInet}},
		{Kind: Create, Set: Set{Name: "KUBE-6-CLUSTER-IP", Type: HashIPPort, Family: FamilyInet6}},
		{Kind: Create, Set: Set{Name: "KUBE-LOOP-BACK", Type: HashIPPortIP, Family: FamilyInet}},
		{Kind: Create, Set: Set{Name: "KUBE-6-LOOP-BACK", Type: HashIPPortIP, Family: FamilyInet6}},
		{Kind: Create, Set: Set{Name: "KUBE-NODE-PORT-TCP", Type: BitmapPort, Range: "0-65535"}},
		{Kind: Create, Set: Set{Name: "KUBE-LOAD-BALANCER-SOURCE-CIDR", Type: HashIPPortNet, Family: FamilyInet}},
		{Kind: Create, Set: Set{Name: "KUBE-6-LB-SOURCE-CIDR", Type: HashIPPortNet, Family: FamilyInet6}},
		{Kind: Create, Set: Set{Name: "KUBE-LOAD-BALANCER-SOURCE-IP", Type: HashIPPortIP, Family: FamilyInet}},
		{Kind: Create, Set: Set{Name: "KUBE-NET", Type: HashNet, Family: FamilyInet}},
		{Kind: Create, Set: Set{Name: "KUBE-6-NET", Type: HashNet, Family: FamilyInet6}},
		{Kind: Create, Set: Set{Name: "KUBE-EMPTY", Type: HashIPPort, Family: FamilyInet}},
	}
	add := func(set, entry string) { ops = append(ops, Op{Kind: Add, Set: Set{Name: set}, Entry: entry}) }
	protos := []string{"tcp", "udp", "sctp"}
	for i := range 3000 { // some 40 KiB of entries: several messages per set
		add("KUBE-CLUSTER-IP", fmt.Sprintf("10.96.%d.%d,%s:%d", i/250, i%250, protos[i%3], 1+i%65535))
		add("KUBE-NODE-PORT-TCP", fmt.Sprint(30000+i))
	}
	for i := range 300 {
		add("KUBE-6-CLUSTER-IP", fmt.Sprintf("fd00::%x,%s:53", i+1, protos[i%3]))
		add("KUBE-LOOP-BACK", fmt.Sprintf("10.244.%d.%d,tcp:8080,10.244.%d.%d", i/250, i%250+1, i/250, i%250+1))
		add("KUBE-6-LOOP-BACK", fmt.Sprintf("fd00:10:244::%x,udp:53,fd00:10:244::%x", i+1, i+1))
	}
	for i, n := range []string{"10.0.0.0/8", "192.0.2.7", "192.0.2.8/32", "172.16.4.0/22", "0.0.0.0/1"} {
		add("KUBE-LOAD-BALANCER-SOURCE-CIDR", fmt.Sprintf("203.0.113.%d,tcp:443,%s", i+1, n))
		add("KUBE-LOAD-BALANCER-SOURCE-IP", fmt.Sprintf("203.0.113.%d,sctp:80,198.51.100.%d", i+1, i+1))
		add("KUBE-NET", n)
	}
	for _, n := range []string{"2001:db8::/32", "fd00::7", "fd00:0:0:1::/64", "fd00::8/128"} {
		add("KUBE-6-LB-SOURCE-CIDR", "2001:db8::1,udp:443,"+n)
		add("KUBE-6-NET", n)
	}
	if err := x.Apply(ops); err != nil {
		t.Fatal(err)
	}
}

// TestNetlinkEntryCountsLab compares, on the real kernel, the entry counts read over netlink
// with those `ipset list -t` prints.
func TestNetlinkEntryCountsLab(t *testing.T) {
	nstest.Enter(t)
	x := NewKernel(utilexec.New())
	if got, err := netlinkEntryCounts(); err != nil || len(got) != 0 {
		t.Fatalf("a namespace without sets: %v, %v; want no sets", got, err)
	}
	populate(t, x)
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
	if !maps.Equal(got, want) || got["KUBE-CLUSTER-IP"] != 3000 || got["KUBE-EMPTY"] != 0 || len(got) != 11 {
		t.Errorf("over netlink %v\nipset list -t %v", got, want)
	}
	if via, err := x.EntryCounts(); err != nil || !maps.Equal(via, got) {
		t.Errorf("EntryCounts = %v, %v; want %v", via, err, got)
	}
}

// TestNetlinkListLab compares, on the real kernel, the sets read over netlink with `ipset
// save`'s reading of them.
func TestNetlinkListLab(t *testing.T) {
	nstest.Enter(t)
	x := NewKernel(utilexec.New())
	if got, err := netlinkList([]string{"KUBE-CLUSTER-IP"}); err != nil || len(got) != 0 {
		t.Fatalf("a namespace without sets: %v, %v; want none", got, err)
	}
	populate(t, x)
	out, err := exec.Command("ipset", "save").Output()
	if err != nil {
		t.Fatal(err)
	}
	want, err := ParseSave(string(out))
	if err != nil {
		t.Fatal(err)
	}
	sortContents(want)
	names := []string{"KUBE-MISSING"}
	for _, c := range want {
		names = append(names, c.Name)
	}
	got, err := netlinkList(names)
	if err != nil {
		t.Fatal(err)
	}
	sortContents(got)
	if len(got) != 11 || len(got[0].Entries) != 3000 || !reflect.DeepEqual(got, want) {
		for i := range max(len(got), len(want)) {
			if i >= len(got) || i >= len(want) || !reflect.DeepEqual(got[i], want[i]) {
				t.Errorf("set %d differs:\nnetlink    %.600v\nipset save %.600v", i, at(got, i), at(want, i))
			}
		}
	}
	via, err := x.List(names...)
	if sortContents(via); err != nil || !reflect.DeepEqual(via, want) {
		t.Errorf("List(%v) = %d sets, %v; want the netlink read", names, len(via), err)
	}
}

func at(cs []Content, i int) any {
	if i < len(cs) {
		return cs[i]
	}
	return "(none)"
}

// BenchmarkListNetlinkLab and BenchmarkListSaveLab read a set of 10,000 hash:ip,port entries
// (KUBE-CLUSTER-IP at 10,000 Services) over netlink and through `ipset save`. (No sub-benchmarks:
// they would run on threads outside the test's network namespace.)
func BenchmarkListNetlinkLab(b *testing.B) { benchmarkList(b, "KUBE-CLUSTER-IP") }
func BenchmarkListSaveLab(b *testing.B)    { benchmarkList(b) }

func benchmarkList(b *testing.B, names ...string) {
	nstest.Enter(b)
	x := NewKernel(utilexec.New())
	ops := []Op{{Kind: Create, Set: Set{Name: "KUBE-CLUSTER-IP", Type: HashIPPort, Family: FamilyInet}}}
	for i := range 10000 {
		ops = append(ops, Op{Kind: Add, Set: Set{Name: "KUBE-CLUSTER-IP"}, Entry: fmt.Sprintf("10.96.%d.%d,tcp:80", i/250, i%250)})
	}
	if err := x.Apply(ops); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if c, err := x.List(names...); err != nil || len(c) != 1 || len(c[0].Entries) != 10000 {
			b.Fatalf("%d sets, %v", len(c), err)
		}
	}
}
