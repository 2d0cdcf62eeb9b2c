//go:build linux

package netdev

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/nstest"
)

// The host kernel has no dummy links: kube-ipvs0 is a bridge in these tests, which the
// watch tells apart by name and index as it does the dummy.
func addBridge(t *testing.T, name string) {
	t.Helper()
	if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}); err != nil {
		t.Fatalf("creating bridge %s: %v", name, err)
	}
}

func addVeth(t *testing.T, name, peer string) {
	t.Helper()
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: peer}); err != nil {
		t.Fatalf("creating veth %s: %v", name, err)
	}
}

func addAddr(t *testing.T, link, cidr string) {
	t.Helper()
	l, err := netlink.LinkByName(link)
	if err != nil {
		t.Fatal(err)
	}
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		t.Fatal(err)
	}
	if a.IP.To4() == nil {
		a.Flags = unix.IFA_F_NODAD // usable at once
	}
	if err := netlink.AddrAdd(l, a); err != nil {
		t.Fatalf("adding %s to %s: %v", cidr, link, err)
	}
}

// hostAddrs returns n /32 addresses 10.200.x.y from the given offset.
func hostAddrs(from, n int) []netip.Addr {
	out := make([]netip.Addr, n)
	for i := range out {
		v := from + i
		out[i] = netip.AddrFrom4([4]byte{10, 200, byte(v >> 8), byte(v)})
	}
	return out
}

type callCounter chan struct{}

func (c callCounter) changed() { c <- struct{}{} }

// expect waits for a call, then takes any more that follow at once (one burst may be reported
// by several calls).
func (c callCounter) expect(t *testing.T, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no call", what)
	}
	c.none(t, "", 100*time.Millisecond)
}

// none fails if a call comes within d (what == "": takes them silently).
func (c callCounter) none(t *testing.T, what string, d time.Duration) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case <-c:
			if what != "" {
				t.Errorf("%s: called", what)
			}
		case <-timeout:
			return
		}
	}
}

// TestWatchAddressesHost watches a fresh namespace: addresses bound to or unbound from a veth
// and lo are reported; bindings on kube-ipvs0 are not, nor its deletion with them, nor its
// bindings once created again (another index); loopback and IPv6 link-local addresses are not;
// nothing is reported once the context is done.
func TestWatchAddressesHost(t *testing.T) {
	nstest.Enter(t)
	addVeth(t, "veth0", "veth1")
	addBridge(t, "kube-ipvs0")
	n := NewNetlink()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := make(callCounter, 10000)
	if err := n.WatchAddresses(ctx, "kube-ipvs0", calls.changed); err != nil {
		t.Fatal(err)
	}
	const quiet = 500 * time.Millisecond // how long a call that should not come is waited for

	if err := n.AddAddress("veth0", netip.MustParseAddr("192.168.7.7")); err != nil {
		t.Fatal(err)
	}
	calls.expect(t, "an address bound to veth0")
	addAddr(t, "lo", "10.0.0.1/24")
	calls.expect(t, "an address added to lo")

	if err := n.AddAddresses("kube-ipvs0", hostAddrs(0, 100), nil); err != nil {
		t.Fatal(err)
	}
	calls.none(t, "100 addresses bound to kube-ipvs0", quiet)
	if err := n.DeleteAddress("veth0", netip.MustParseAddr("192.168.7.7")); err != nil {
		t.Fatal(err)
	}
	calls.expect(t, "an address unbound from veth0")

	if err := n.DeleteLink("kube-ipvs0"); err != nil {
		t.Fatal(err)
	}
	calls.none(t, "kube-ipvs0 deleted with its addresses", quiet)
	addBridge(t, "kube-ipvs0")
	if err := n.AddAddresses("kube-ipvs0", hostAddrs(0, 100), nil); err != nil {
		t.Fatal(err)
	}
	calls.none(t, "100 addresses bound to kube-ipvs0 created again", quiet)

	addAddr(t, "veth0", "fe80::5/64")
	addAddr(t, "lo", "127.0.0.5/32")
	calls.none(t, "link-local and loopback addresses", quiet)
	addAddr(t, "veth0", "fd00::5/64")
	calls.expect(t, "an IPv6 address")

	cancel()
	time.Sleep(100 * time.Millisecond) // the watch ends on its own goroutine
	addAddr(t, "veth0", "192.168.8.8/24")
	calls.none(t, "an address added once the context is done", quiet)
}

// TestWatchAddressesRenewsHost: while changed blocks, a burst of notifications overruns the
// subscription's socket (the kernel reports ENOBUFS); the watch subscribes again, calls
// changed, and reports the changes after that.
func TestWatchAddressesRenewsHost(t *testing.T) {
	nstest.Enter(t)
	addVeth(t, "veth0", "veth1")
	n := NewNetlink()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := make(callCounter, 10000)
	gate := make(chan struct{})
	first := true
	w, err := n.watchAddresses(ctx, "kube-ipvs0", func() {
		calls.changed()
		if first {
			first = false
			<-gate
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.AddAddress("veth0", netip.MustParseAddr("192.168.7.7")); err != nil {
		t.Fatal(err)
	}
	calls.expect(t, "the first address") // changed now blocks
	const burst = 5000
	if err := n.AddAddresses("veth0", hostAddrs(0, burst), nil); err != nil {
		t.Fatal(err)
	}
	close(gate)
	deadline := time.Now().Add(10 * time.Second)
	for w.subscriptions.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no renewed subscription after %d notifications while changed blocked", burst)
		}
		time.Sleep(10 * time.Millisecond)
	}
	calls.expect(t, "the renewal")
	addAddr(t, "veth0", "192.168.9.9/24")
	calls.expect(t, "an address added after the renewal")
	t.Logf("subscriptions: %d", w.subscriptions.Load())
}
