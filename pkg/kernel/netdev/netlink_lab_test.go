//go:build lab

package netdev

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/nstest"
)

func TestNetlinkDummyLab(t *testing.T) {
	nstest.Enter(t)
	n := NewNetlink()
	const dev = "kube-ipvs0"
	if _, err := n.ListAddresses(dev); !errors.Is(err, ErrLinkNotFound) {
		t.Fatalf("ListAddresses before creation: %v, want ErrLinkNotFound", err)
	}
	for i, want := range []bool{true, false} {
		if created, err := n.EnsureDummy(dev); err != nil || created != want {
			t.Fatalf("EnsureDummy #%d = %v, %v; want %v", i, created, err, want)
		}
	}
	l, err := netlink.LinkByName(dev)
	if err != nil {
		t.Fatal(err)
	}
	if l.Type() != "dummy" || l.Attrs().Flags&net.FlagUp != 0 {
		t.Errorf("link type %s flags %v; want a dummy left down", l.Type(), l.Attrs().Flags)
	}
	bound := addrs("10.96.0.1", "fd00::1", "10.96.0.10")
	for _, a := range append(bound, bound[0]) { // the repeat must be accepted
		if err := n.AddAddress(dev, a); err != nil {
			t.Fatalf("AddAddress(%s): %v", a, err)
		}
	}
	got, err := n.ListAddresses(dev)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, netip.Addr.Compare)
	if want := sortedUnique(slices.Clone(bound)); !slices.Equal(got, want) {
		t.Errorf("bound %v, want %v", got, want)
	}
	// Host prefixes, as upstream binds them.
	kaddrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range kaddrs {
		if ones, bits := a.Mask.Size(); ones != bits {
			t.Errorf("%s bound with prefix /%d", a.IP, ones)
		}
	}

	// A node address on another link, and the same service address on both.
	if err := netlink.AddrAdd(loLink(t), &netlink.Addr{IPNet: mustCIDR(t, "192.168.7.7/24")}); err != nil {
		t.Fatal(err)
	}
	if err := netlink.AddrAdd(loLink(t), &netlink.Addr{IPNet: mustCIDR(t, "10.96.0.10/32")}); err != nil {
		t.Fatal(err)
	}
	local, err := n.LocalAddresses(dev)
	if err != nil {
		t.Fatal(err)
	}
	if want := addrs("10.96.0.10", "192.168.7.7"); !slices.Equal(local, want) {
		t.Errorf("LocalAddresses = %v, want %v (no loopback, no kube-ipvs0 only addresses)", local, want)
	}

	for _, a := range addrs("10.96.0.1", "10.96.0.1", "2001:db8::99") { // repeat and never-bound
		if err := n.DeleteAddress(dev, a); err != nil {
			t.Fatalf("DeleteAddress(%s): %v", a, err)
		}
	}
	// An address bound with another prefix is removed too.
	if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: mustCIDR(t, "10.50.0.1/24")}); err != nil {
		t.Fatal(err)
	}
	if err := n.DeleteAddress(dev, netip.MustParseAddr("10.50.0.1")); err != nil {
		t.Fatal(err)
	}
	got, err = n.ListAddresses(dev)
	slices.SortFunc(got, netip.Addr.Compare)
	if err != nil || !slices.Equal(got, addrs("10.96.0.10", "fd00::1")) {
		t.Errorf("after deletes: %v, %v", got, err)
	}

	// Someone recreates the link behind our back: its index changes, and binding through the
	// index n remembers fails with ENODEV, so n must look the link up again.
	if err := netlink.LinkDel(l); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: dev}}); err != nil {
		t.Fatal(err)
	}
	if err := n.AddAddress(dev, netip.MustParseAddr("10.96.0.77")); err != nil {
		t.Fatalf("AddAddress after the link was recreated: %v", err)
	}
	if got, err := n.ListAddresses(dev); err != nil || !slices.Equal(got, addrs("10.96.0.77")) {
		t.Errorf("recreated link holds %v, %v; want 10.96.0.77", got, err)
	}

	if err := n.DeleteLink(dev); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName(dev); err == nil {
		t.Error("link still present after DeleteLink")
	}
	if err := n.DeleteLink(dev); err != nil {
		t.Errorf("deleting a missing link: %v", err)
	}
}

// TestNetlinkVXLANLab needs the vxlan module only (it also runs on hosts without dummy).
func TestNetlinkVXLANLab(t *testing.T) {
	nstest.Enter(t)
	n := NewNetlink()
	if ports, err := n.VXLANPorts(); err != nil || len(ports) != 0 {
		t.Fatalf("fresh namespace: %v, %v", ports, err)
	}
	lo := loLink(t)
	for _, v := range []*netlink.Vxlan{
		{LinkAttrs: netlink.LinkAttrs{Name: "vx-default"}, VxlanId: 1, VtepDevIndex: lo.Attrs().Index},
		{LinkAttrs: netlink.LinkAttrs{Name: "vx-iana"}, VxlanId: 2, VtepDevIndex: lo.Attrs().Index, Port: 4789},
	} {
		if err := netlink.LinkAdd(v); err != nil {
			t.Fatalf("creating %s: %v", v.Name, err)
		}
	}
	ports, err := n.VXLANPorts()
	if err != nil || !slices.Equal(ports, []uint16{4789, DefaultVXLANPort}) {
		t.Errorf("VXLANPorts = %v, %v; want [4789 %d]", ports, err, DefaultVXLANPort)
	}
	// The kernel reports the resolved default, never 0.
	l, err := netlink.LinkByName("vx-default")
	if err != nil {
		t.Fatal(err)
	}
	if p := l.(*netlink.Vxlan).Port; p != DefaultVXLANPort {
		t.Errorf("kernel reports port %d for a link created without one", p)
	}
	// Addresses on a non-dummy link go through the same code.
	if err := n.AddAddress("vx-iana", netip.MustParseAddr("fd00::5")); err != nil {
		t.Fatal(err)
	}
	if got, err := n.ListAddresses("vx-iana"); err != nil || !slices.Contains(got, netip.MustParseAddr("fd00::5")) {
		t.Errorf("ListAddresses(vx-iana) = %v, %v", got, err)
	}
}

func loLink(t *testing.T) netlink.Link {
	t.Helper()
	l, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func mustCIDR(t *testing.T, s string) *net.IPNet {
	t.Helper()
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	n.IP = ip
	return n
}

// TestNetlinkManyAddressesLab lists more addresses than one datagram of a dump holds, as on a
// node with thousands of Services, and checks both listings against what was bound.
func TestNetlinkManyAddressesLab(t *testing.T) {
	nstest.Enter(t)
	n := NewNetlink()
	const dev, count = "kube-ipvs0", 1500
	if _, err := n.EnsureDummy(dev); err != nil {
		t.Fatal(err)
	}
	var want []netip.Addr
	for i := range count {
		a := netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)})
		if i%3 == 0 {
			a = netip.AddrFrom16([16]byte{0xfd, 0, 14: byte(i >> 8), 15: byte(i)})
		}
		if err := n.AddAddress(dev, a); err != nil {
			t.Fatal(err)
		}
		want = append(want, a)
	}
	got, err := n.ListAddresses(dev)
	if err != nil {
		t.Fatal(err)
	}
	// IPv6 gets a link-local address when a link is up; kube-ipvs0 stays down, so none here.
	if !slices.Equal(sortedUnique(got), sortedUnique(slices.Clone(want))) {
		t.Errorf("ListAddresses: %d addresses, want %d", len(got), len(want))
	}
	if err := netlink.AddrAdd(loLink(t), &netlink.Addr{IPNet: mustCIDR(t, "192.168.7.7/24")}); err != nil {
		t.Fatal(err)
	}
	local, err := n.LocalAddresses(dev)
	if err != nil || !slices.Equal(local, addrs("192.168.7.7")) {
		t.Errorf("LocalAddresses = %v, %v; want only 192.168.7.7", local, err)
	}
}

// TestNetlinkAddAddressesLab binds addresses of both families in batches over several round
// trips: an address already bound is no refusal, an invalid one is refused without being sent,
// the kernel's own refusals come back by index, and a cached link index that went stale (the
// link deleted and created again) is looked up again.
func TestNetlinkAddAddressesLab(t *testing.T) {
	nstest.Enter(t)
	n := NewNetlink()
	const dev = "kube-ipvs0"
	if err := n.AddAddresses(dev, addrs("10.96.0.1"), nil); !errors.Is(err, ErrLinkNotFound) {
		t.Fatalf("AddAddresses before the link exists: %v, want ErrLinkNotFound", err)
	}
	if _, err := n.EnsureDummy(dev); err != nil {
		t.Fatal(err)
	}
	var in, want []netip.Addr
	for i := range 150 {
		a := netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)})
		if i%3 == 0 {
			a = netip.AddrFrom16([16]byte{0xfd, 0, 14: byte(i >> 8), 15: byte(i)})
		}
		in = append(in, a)
		want = append(want, a)
	}
	in[70] = in[5]                                  // already bound by the time it is sent
	in[100] = netip.MustParseAddr("::ffff:1.2.3.4") // invalid: refused before sending
	in[149] = netip.MustParseAddr("ff02::1")        // IPv6 multicast: the kernel refuses it
	unsent := map[netip.Addr]bool{want[70]: true, want[100]: true, want[149]: true}
	want = slices.DeleteFunc(want, func(a netip.Addr) bool { return unsent[a] })
	refused := map[int]error{}
	if err := n.AddAddresses(dev, in, func(i int, err error) { refused[i] = err }); err != nil {
		t.Fatal(err)
	}
	if len(refused) != 2 || refused[100] == nil || refused[149] == nil {
		t.Errorf("refused %v, want 100 (IPv4-mapped) and 149 (IPv6 multicast)", refused)
	}
	got, err := n.ListAddresses(dev)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sortedUnique(got), sortedUnique(slices.Clone(want))) {
		t.Errorf("bound %d addresses, want %d", len(got), len(want))
	}

	if err := n.DeleteLink(dev); err != nil {
		t.Fatal(err)
	}
	if _, err := n.EnsureDummy(dev); err != nil {
		t.Fatal(err)
	}
	if err := n.AddAddresses(dev, addrs("10.96.9.9"), func(_ int, err error) { t.Errorf("refused: %v", err) }); err != nil {
		t.Fatalf("AddAddresses after the link was created again: %v", err)
	}
	if got, err := n.ListAddresses(dev); err != nil || !slices.Equal(got, addrs("10.96.9.9")) {
		t.Errorf("after the link came back: %v, %v", got, err)
	}
}

// TestNetlinkDeleteAddressesLab unbinds in batches: host addresses go, an address not bound
// is no refusal, one bound with another prefix (by hand) goes too, an invalid one is refused.
func TestNetlinkDeleteAddressesLab(t *testing.T) {
	nstest.Enter(t)
	n := NewNetlink()
	const dev = "kube-ipvs0"
	if err := n.DeleteAddresses(dev, addrs("10.96.0.1"), nil); !errors.Is(err, ErrLinkNotFound) {
		t.Fatalf("DeleteAddresses before the link exists: %v, want ErrLinkNotFound", err)
	}
	if _, err := n.EnsureDummy(dev); err != nil {
		t.Fatal(err)
	}
	var bound []netip.Addr
	for i := range 100 {
		bound = append(bound, netip.AddrFrom4([4]byte{10, 96, 1, byte(i)}))
	}
	bound = append(bound, netip.MustParseAddr("fd00::1"))
	if err := n.AddAddresses(dev, bound, func(i int, err error) { t.Errorf("binding %s: %v", bound[i], err) }); err != nil {
		t.Fatal(err)
	}
	l, err := netlink.LinkByName(dev)
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: mustCIDR(t, "10.97.0.1/24")}); err != nil {
		t.Fatal(err)
	}
	keep := netip.MustParseAddr("10.96.1.50")
	var del []netip.Addr
	for _, a := range bound {
		if a != keep {
			del = append(del, a)
		}
	}
	del = append(del, netip.MustParseAddr("10.96.2.2"), netip.MustParseAddr("10.97.0.1"), netip.MustParseAddr("::ffff:1.2.3.4"))
	refused := map[int]error{}
	if err := n.DeleteAddresses(dev, del, func(i int, err error) { refused[i] = err }); err != nil {
		t.Fatal(err)
	}
	if len(refused) != 1 || refused[len(del)-1] == nil {
		t.Errorf("refused %v, want only the IPv4-mapped address", refused)
	}
	if got, err := n.ListAddresses(dev); err != nil || !slices.Equal(got, []netip.Addr{keep}) {
		t.Errorf("left bound %v, %v; want only %s", got, err, keep)
	}
}

// BenchmarkBindAddressesLab binds 2000 addresses to a dummy link, one request each and in
// batches; BenchmarkUnbindAddressesLab unbinds them. Each sub-benchmark works in a network
// namespace of its own (a namespace belongs to a thread, and b.Run starts a goroutine).
func BenchmarkBindAddressesLab(b *testing.B) {
	benchAddresses(b, Netlink.AddAddress, Netlink.AddAddresses, func(n Netlink, _ []netip.Addr) error {
		if err := n.DeleteLink(benchDev); err != nil {
			return err
		}
		_, err := n.EnsureDummy(benchDev)
		return err
	})
}

func BenchmarkUnbindAddressesLab(b *testing.B) {
	benchAddresses(b, Netlink.DeleteAddress, Netlink.DeleteAddresses, func(n Netlink, in []netip.Addr) error {
		return n.AddAddresses(benchDev, in, func(_ int, err error) { b.Fatal(err) })
	})
}

const benchDev = "kube-ipvs0"

// benchAddresses times changing 2000 addresses of a dummy link with one request each (one) and
// in batches (many); reset (not timed) runs before each round.
func benchAddresses(b *testing.B, one func(Netlink, string, netip.Addr) error,
	many func(Netlink, string, []netip.Addr, func(int, error)) error, reset func(Netlink, []netip.Addr) error) {
	var in []netip.Addr
	for i := range 2000 {
		in = append(in, netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)}))
	}
	for _, mode := range []string{"single", "batch"} {
		b.Run(mode, func(b *testing.B) {
			nstest.Enter(b)
			n := NewNetlink()
			if _, err := n.EnsureDummy(benchDev); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				b.StopTimer()
				if err := reset(n, in); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if mode == "batch" {
					if err := many(n, benchDev, in, func(_ int, err error) { b.Fatal(err) }); err != nil {
						b.Fatal(err)
					}
					continue
				}
				for _, a := range in {
					if err := one(n, benchDev, a); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
