//go:build linux

package ipset

import (
	"errors"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"

	utilexec "k8s.io/utils/exec"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/nstest"
)

// TestExecMatchesFake runs applyScenarios against the real ipset tool in a fresh network
// namespace and against the Fake, and requires the same errors and the same listed state after
// every batch. It needs root, the ip_set module and the ipset tool.
func TestExecMatchesFake(t *testing.T) {
	if _, err := exec.LookPath(cmd); err != nil {
		t.Skip("ipset is not installed")
	}
	nstest.Enter(t)
	x := NewKernel(utilexec.New())
	if err := CheckVersion(utilexec.New()); err != nil {
		t.Fatal(err)
	}
	f := NewFake()
	for _, sc := range applyScenarios {
		errX, errF := x.Apply(sc.ops), f.Apply(sc.ops)
		if (errX != nil) != sc.wantErr || (errF != nil) != sc.wantErr {
			t.Fatalf("%s: ipset error %v, fake error %v, want error %v", sc.name, errX, errF, sc.wantErr)
		}
		got, err := x.List()
		if err != nil {
			t.Fatal(err)
		}
		sortContents(got)
		want, _ := f.List()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("after %q:\nipset has %+v\nfake has  %+v", sc.name, got, want)
		}
		// The same sets read over netlink, by name, with a name that does not exist.
		names := []string{"KUBE-MISSING"}
		for _, c := range want {
			names = append(names, c.Name)
		}
		viaNetlink, err := netlinkList(names)
		if err != nil {
			t.Fatalf("after %q: %v", sc.name, err)
		}
		sortContents(viaNetlink)
		if len(viaNetlink)+len(want) > 0 && !reflect.DeepEqual(viaNetlink, want) {
			t.Errorf("after %q:\nnetlink reads %+v\nfake has     %+v", sc.name, viaNetlink, want)
		}
	}
}

// sortContents orders sets by name and each set's entries, as the Fake lists them.
func sortContents(cs []Content) {
	for i := range cs {
		slices.Sort(cs[i].Entries)
	}
	slices.SortFunc(cs, func(a, b Content) int { return strings.Compare(a.Name, b.Name) })
}

type fakeVersionCmd struct {
	utilexec.Cmd
	out string
	err error
}

func (c fakeVersionCmd) CombinedOutput() ([]byte, error) { return []byte(c.out), c.err }

type fakeVersionExec struct {
	utilexec.Interface
	out string
	err error
}

func (e fakeVersionExec) Command(string, ...string) utilexec.Cmd {
	return fakeVersionCmd{out: e.out, err: e.err}
}

func TestCheckVersion(t *testing.T) {
	for _, tc := range []struct {
		out  string
		err  error
		fail bool
	}{
		{"ipset v7.17, protocol version: 7\n", nil, false},
		{"ipset v6.0, protocol version: 6\n", nil, false},
		{"ipset v5.4.1, protocol version: 5\n", nil, true},
		{"garbage", nil, true},
		{"", errors.New("executable file not found"), true},
	} {
		err := CheckVersion(fakeVersionExec{out: tc.out, err: tc.err})
		if (err != nil) != tc.fail {
			t.Errorf("CheckVersion(%q, %v) = %v, want failure %v", tc.out, tc.err, err, tc.fail)
		}
	}
}

// TestExecAdoptsUpstreamSets creates sets with upstream kube-proxy's exact create arguments and
// requires Apply's Create to accept them as they are.
func TestExecAdoptsUpstreamSets(t *testing.T) {
	if _, err := exec.LookPath(cmd); err != nil {
		t.Skip("ipset is not installed")
	}
	nstest.Enter(t)
	upstream := [][]string{
		{"create", "KUBE-CLUSTER-IP", "hash:ip,port", "family", "inet", "hashsize", "1024", "maxelem", "65536"},
		{"create", "KUBE-6-IPVS-IPS", "hash:ip", "family", "inet6", "hashsize", "1024", "maxelem", "65536"},
		{"create", "KUBE-NODE-PORT-TCP", "bitmap:port", "range", "0-65535"},
	}
	for _, args := range upstream {
		if out, err := exec.Command(cmd, args...).CombinedOutput(); err != nil {
			t.Fatalf("ipset %v: %v: %s", args, err, out)
		}
	}
	sets := []Set{
		{Name: "KUBE-6-IPVS-IPS", Type: HashIP, Family: "inet6", Comment: "Addresses on the ipvs interface"},
		{Name: "KUBE-CLUSTER-IP", Type: HashIPPort, Family: "inet"},
		{Name: "KUBE-NODE-PORT-TCP", Type: BitmapPort, Family: "inet"},
	}
	x := NewKernel(utilexec.New())
	var ops []Op
	for _, s := range sets {
		ops = append(ops, Op{Kind: Create, Set: s})
	}
	if err := x.Apply(ops); err != nil {
		t.Fatalf("adopting upstream sets: %v", err)
	}
	got, err := x.List()
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, func(a, b Content) int { return strings.Compare(a.Name, b.Name) })
	for i, s := range sets {
		if i >= len(got) || got[i].Set != AsListed(s) {
			t.Errorf("listed %+v, want %+v", got, AsListed(s))
		}
	}
}
