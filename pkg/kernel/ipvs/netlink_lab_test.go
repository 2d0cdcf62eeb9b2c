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
	libipvs "github.com/moby/ipvs"
)

// labNetlink opens the adapter in a fresh network namespace, closed when the test ends.
func labNetlink(t testing.TB) *Netlink {
	t.Helper()
	nstest.Enter(t)
	n, err := NewNetlink()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

// TestNetlinkLab programs IPVS in a fresh namespace and checks every change by reading it back.
func TestNetlinkLab(t *testing.T) {
	n := labNetlink(t)

	if vss, err := n.ListVirtualServers(); err != nil || len(vss) != 0 {
		t.Fatalf("fresh namespace: %v, %v", vss, err)
	}
	vs4 := VirtualServer{Key: Key{Address: netip.MustParseAddr("10.96.0.1"), Protocol: TCP, Port: 443}, Scheduler: "rr"}
	vs6 := VirtualServer{Key: Key{Address: netip.MustParseAddr("fd00::1"), Protocol: SCTP, Port: 9}, Scheduler: "wrr",
		Flags: FlagPersistent, Timeout: 10800}
	vsUDP := VirtualServer{Key: Key{Address: netip.MustParseAddr("10.96.0.10"), Protocol: UDP, Port: 53}, Scheduler: "sh",
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

	rsA := RealServer{Address: netip.MustParseAddr("10.244.0.5"), Port: 8443, Weight: 1}
	rsB := RealServer{Address: netip.MustParseAddr("10.244.1.5"), Port: 8443, Weight: 1}
	rs6 := RealServer{Address: netip.MustParseAddr("fd00:10::5"), Port: 9, Weight: 2}
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
	missing := Key{Address: netip.MustParseAddr("10.96.0.99"), Protocol: TCP, Port: 1}
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
	// The same, read by moby/ipvs (the adapter's own reader could share a mistake with its writer).
	if h, err := libipvs.New(""); err != nil {
		t.Error(err)
	} else {
		cfg, err := h.GetConfig()
		h.Close()
		if err != nil || cfg.TimeoutTCP != 900*time.Second || cfg.TimeoutTCPFin != 33*time.Second || cfg.TimeoutUDP != 300*time.Second {
			t.Errorf("moby/ipvs reads the timeouts as %+v, %v", cfg, err)
		}
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

// TestNetlinkLabLargeDumps reads tables that span many datagrams (a dump answers in skbs of at
// most 32 KiB), skips a firewall-mark service it does not manage, and checks the socket still
// pairs each answer with its request after a failed one.
func TestNetlinkLabLargeDumps(t *testing.T) {
	n := labNetlink(t)

	const nVS, nRS = 1500, 1200
	var want []VirtualServer
	for i := range nVS {
		vs := VirtualServer{Key: Key{Address: netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)}), Protocol: TCP, Port: 80}, Scheduler: "rr"}
		if i%2 == 1 {
			vs.Key = Key{Address: netip.AddrFrom16([16]byte{0xfd, 0, 15: byte(i), 14: byte(i >> 8)}), Protocol: UDP, Port: 53}
		}
		if err := n.AddVirtualServer(vs); err != nil {
			t.Fatal(err)
		}
		want = append(want, vs)
	}
	// A firewall-mark service (not ours to manage) through moby/ipvs.
	h, err := libipvs.New("")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.NewService(&libipvs.Service{FWMark: 9, AddressFamily: syscall.AF_INET, SchedName: "rr", Netmask: 0xffffffff}); err != nil {
		t.Fatal(err)
	}
	assertVSs(t, n, want...)

	vs := want[0].Key
	var wantRS []RealServer
	for i := range nRS {
		rs := RealServer{Address: netip.AddrFrom4([4]byte{10, 244, byte(i >> 8), byte(i)}), Port: 8080, Weight: 1 + i%3}
		if err := n.AddRealServer(vs, rs); err != nil {
			t.Fatal(err)
		}
		wantRS = append(wantRS, rs)
	}
	if err := n.AddRealServer(vs, wantRS[0]); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("adding twice: %v, want EEXIST", err)
	}
	assertRSs(t, n, vs, wantRS...)
	got, err := n.ListRealServers(vs)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range got {
		if s.ActiveConnections != 0 || s.InactiveConnections != 0 {
			t.Errorf("connections on %s without traffic: %+v", s.RealServer, s)
		}
	}
}

// TestNetlinkLabBatchedAdds sends virtual and real servers over several round trips of a
// batch: a real server finds the virtual server added before it in the same batch, the
// kernel's refusals come back with their index (including the last request of a batch, whose
// answer is also the batch's acknowledgement), the others take effect, and the socket still
// pairs a single request with its answer afterwards.
func TestNetlinkLabBatchedAdds(t *testing.T) {
	n := labNetlink(t)
	vs := VirtualServer{Key: Key{Address: netip.MustParseAddr("10.96.0.1"), Protocol: TCP, Port: 80}, Scheduler: "rr"}
	vs2 := VirtualServer{Key: Key{Address: netip.MustParseAddr("10.96.0.2"), Protocol: UDP, Port: 53}, Scheduler: "rr"}
	rs := func(i int) RealServer {
		return RealServer{Address: netip.AddrFrom4([4]byte{10, 244, byte(i >> 8), byte(i)}), Port: 8080, Weight: 1}
	}
	// 154 requests: batches of 64, 64 and 26. The first adds vs; 150 real servers of vs follow,
	// three of them repeating an earlier one (refused: the last of the first batch, one inside
	// the second, the last of all); in the second batch vs is added again (refused), and vs2 with
	// a real server.
	adds := []Addition{VirtualServerAddition(vs)}
	var want []RealServer
	refuse := map[int]error{}
	dups := map[int]int{63: 0, 70: 3, 153: 100}
	for i := 0; len(adds) < 154; i++ {
		switch j := len(adds); {
		case j == 80:
			refuse[j] = syscall.EEXIST
			adds = append(adds, VirtualServerAddition(vs))
		case j == 90:
			adds = append(adds, VirtualServerAddition(vs2), RealServerAddition(vs2.Key, rs(7)))
		case dups[j] != 0 || j == 63:
			refuse[j] = syscall.EEXIST
			adds = append(adds, RealServerAddition(vs.Key, rs(dups[j])))
		default:
			adds = append(adds, RealServerAddition(vs.Key, rs(i)))
			want = append(want, rs(i))
		}
	}
	refused := map[int]error{}
	if err := n.Add(adds, func(i int, err error) { refused[i] = err }); err != nil {
		t.Fatal(err)
	}
	if len(refused) != len(refuse) {
		t.Errorf("refused %v, want %v", refused, refuse)
	}
	for i, e := range refuse {
		if !errors.Is(refused[i], e) {
			t.Errorf("request %d (%s): %v, want %v", i, adds[i], refused[i], e)
		}
	}
	assertVSs(t, n, vs, vs2)
	assertRSs(t, n, vs.Key, want...)
	assertRSs(t, n, vs2.Key, rs(7))

	missing := Key{Address: netip.MustParseAddr("10.96.0.99"), Protocol: TCP, Port: 1}
	refused = map[int]error{}
	if err := n.Add([]Addition{RealServerAddition(missing, rs(1)), RealServerAddition(missing, rs(2))}, func(i int, err error) { refused[i] = err }); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if !errors.Is(refused[i], syscall.ESRCH) {
			t.Errorf("request %d on a missing virtual server: %v, want ESRCH", i, refused[i])
		}
	}
	if err := n.AddRealServer(vs.Key, rs(1)); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("a single request after the batches: %v, want EEXIST", err)
	}
	if err := n.Add(nil, nil); err != nil {
		t.Errorf("an empty batch: %v", err)
	}
}
