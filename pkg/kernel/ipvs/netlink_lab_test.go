//go:build lab

package ipvs

import (
	"errors"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/nstest"
)

// TestNetlinkLab programs IPVS in a fresh namespace and checks every change by reading it back.
func TestNetlinkLab(t *testing.T) {
	nstest.Enter(t)
	n, err := NewNetlink()
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()

	if vss, err := n.ListVirtualServers(); err != nil || len(vss) != 0 {
		t.Fatalf("fresh namespace: %v, %v", vss, err)
	}
	vs4 := VirtualServer{Key: Key{netip.MustParseAddr("10.96.0.1"), TCP, 443}, Scheduler: "rr"}
	vs6 := VirtualServer{Key: Key{netip.MustParseAddr("fd00::1"), SCTP, 9}, Scheduler: "wrr",
		Flags: FlagPersistent, Timeout: 10800}
	vsUDP := VirtualServer{Key: Key{netip.MustParseAddr("10.96.0.10"), UDP, 53}, Scheduler: "sh",
		Flags: FlagSchedSH1 | FlagSchedSH2}
	for _, vs := range []VirtualServer{vs4, vs6, vsUDP} {
		if err := n.AddVirtualServer(vs); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.AddVirtualServer(vs4); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("adding twice: %v, want EEXIST", err)
	}
	assertVSs(t, n, vs4, vs6, vsUDP)

	vs4.Scheduler, vs4.Flags, vs4.Timeout = "wlc", FlagPersistent, 60
	if err := n.UpdateVirtualServer(vs4); err != nil {
		t.Fatal(err)
	}
	assertVSs(t, n, vs4, vs6, vsUDP)

	rsA := RealServer{netip.MustParseAddr("10.244.0.5"), 8443, 1}
	rsB := RealServer{netip.MustParseAddr("10.244.1.5"), 8443, 1}
	rs6 := RealServer{netip.MustParseAddr("fd00:10::5"), 9, 2}
	for _, rs := range []RealServer{rsA, rsB} {
		if err := n.AddRealServer(vs4.Key, rs); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.AddRealServer(vs6.Key, rs6); err != nil {
		t.Fatal(err)
	}
	if err := n.AddRealServer(vs4.Key, rsA); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("adding real server twice: %v, want EEXIST", err)
	}
	missing := Key{netip.MustParseAddr("10.96.0.99"), TCP, 1}
	if err := n.AddRealServer(missing, rsA); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("real server on missing vs: %v, want ESRCH", err)
	}
	if rss, err := n.ListRealServers(missing); err != nil || len(rss) != 0 {
		t.Errorf("real servers of missing vs: %v, %v; want none, nil (as the fake)", rss, err)
	}
	rsB.Weight = 0
	if err := n.UpdateRealServer(vs4.Key, rsB); err != nil {
		t.Fatal(err)
	}
	assertRSs(t, n, vs4.Key, rsA, rsB)
	assertRSs(t, n, vs6.Key, rs6)

	if err := n.DeleteRealServer(vs4.Key, rsA); err != nil {
		t.Fatal(err)
	}
	if err := n.DeleteRealServer(vs4.Key, rsA); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("deleting missing real server: %v, want ENOENT", err)
	}
	assertRSs(t, n, vs4.Key, rsB)

	if err := n.DeleteVirtualServer(vs4.Key); err != nil {
		t.Fatal(err)
	}
	if err := n.DeleteVirtualServer(vs4.Key); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("deleting missing vs: %v, want ESRCH", err)
	}
	assertVSs(t, n, vs6, vsUDP)

	if err := n.SetTimeouts(0, 33*time.Second, 0); err != nil {
		t.Fatal(err)
	}
	tcp, fin, udp, err := n.Timeouts()
	if err != nil || tcp != 900*time.Second || fin != 33*time.Second || udp != 300*time.Second {
		t.Errorf("timeouts after SetTimeouts(0, 33s, 0) = %v %v %v %v", tcp, fin, udp, err)
	}

	if err := n.Flush(); err != nil {
		t.Fatal(err)
	}
	assertVSs(t, n)
}

func assertVSs(t *testing.T, n *Netlink, want ...VirtualServer) {
	t.Helper()
	got, err := n.ListVirtualServers()
	if err != nil {
		t.Fatal(err)
	}
	cmpVS := func(a, b VirtualServer) int { return compareKeys(a.Key, b.Key) }
	slices.SortFunc(got, cmpVS)
	slices.SortFunc(want, cmpVS)
	if !slices.Equal(got, want) {
		t.Errorf("kernel has %+v, want %+v", got, want)
	}
}

func assertRSs(t *testing.T, n *Netlink, vs Key, want ...RealServer) {
	t.Helper()
	got, err := n.ListRealServers(vs)
	if err != nil {
		t.Fatal(err)
	}
	var gotRS []RealServer
	for _, s := range got {
		gotRS = append(gotRS, s.RealServer)
	}
	cmpRS := func(a, b RealServer) int {
		return netip.AddrPortFrom(a.Address, a.Port).Compare(netip.AddrPortFrom(b.Address, b.Port))
	}
	slices.SortFunc(gotRS, cmpRS)
	slices.SortFunc(want, cmpRS)
	if !slices.Equal(gotRS, want) {
		t.Errorf("kernel has real servers %+v for %s, want %+v", gotRS, vs, want)
	}
}
