//go:build linux

package sockdiag

import (
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/nstest"
)

// addLoopbackAddrs binds addresses to lo of the test's namespace, so sockets can be bound to
// specific addresses other than the loopback ones.
func addLoopbackAddrs(t testing.TB, cidrs ...string) {
	t.Helper()
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cidrs {
		a, err := netlink.ParseAddr(c)
		if err != nil {
			t.Fatal(err)
		}
		a.Flags = unix.IFA_F_NODAD // bindable at once
		if err := netlink.AddrAdd(lo, a); err != nil {
			t.Fatalf("adding %s to lo: %v", c, err)
		}
	}
}

// mappedListener listens on an IPv4-mapped address through an IPv6 socket, which Go's net
// package refuses to do.
func mappedListener(t testing.TB, addr string, port int) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet6{Port: port, Addr: netip.MustParseAddr(addr).As16()}); err != nil {
		t.Fatalf("binding %s: %v", addr, err)
	}
	if err := unix.Listen(fd, 1); err != nil {
		t.Fatal(err)
	}
}

// TestListenersHost opens sockets of every kind in a fresh namespace and reads them back:
// listeners on specific and wildcard addresses of both families, IPv6 sockets with and
// without IPV6_V6ONLY, and sockets that must not be reported (established TCP connections on
// both ends, a connected UDP socket, a TCP socket bound but not listening).
func TestListenersHost(t *testing.T) {
	nstest.Enter(t)
	addLoopbackAddrs(t, "10.1.2.3/32", "fd00::3/128")
	closeLater := func(c interface{ Close() error }) { t.Cleanup(func() { c.Close() }) }
	listen := func(network, addr string) net.Listener {
		t.Helper()
		l, err := net.Listen(network, addr)
		if err != nil {
			t.Fatalf("listen %s %s: %v", network, addr, err)
		}
		closeLater(l)
		return l
	}
	listenUDP := func(network, addr string) {
		t.Helper()
		c, err := net.ListenPacket(network, addr)
		if err != nil {
			t.Fatalf("listen %s %s: %v", network, addr, err)
		}
		closeLater(c)
	}
	listen("tcp4", "10.1.2.3:8080")
	listen("tcp4", "0.0.0.0:10250")
	listen("tcp6", "[fd00::3]:8443")
	listen("tcp6", "[::]:9090")              // IPV6_V6ONLY: Go sets it for tcp6
	listen("tcp", ":22")                     // ::, dual stack
	mappedListener(t, "::ffff:10.1.2.3", 81) // IPv4 only, through an IPv6 socket
	listenUDP("udp4", "0.0.0.0:53")
	listenUDP("udp4", "10.1.2.3:5353")
	listenUDP("udp6", "[fd00::3]:547")
	listenUDP("udp", ":4789") // ::, dual stack
	listenUDP("udp6", "[::]:8472")

	// Established on both ends: neither the client's nor the accepted socket is a listener.
	server := listen("tcp4", "127.0.0.1:7000")
	client, err := net.Dial("tcp4", "127.0.0.1:7000")
	if err != nil {
		t.Fatal(err)
	}
	closeLater(client)
	accepted, err := server.Accept()
	if err != nil {
		t.Fatal(err)
	}
	closeLater(accepted)
	// A connected UDP socket receives from its peer only.
	udpClient, err := net.Dial("udp4", "10.1.2.3:5353")
	if err != nil {
		t.Fatal(err)
	}
	closeLater(udpClient)
	// Bound, not listening.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: 6000}); err != nil {
		t.Fatal(err)
	}

	l := func(p Protocol, a string, port uint16, dual bool) Listener {
		return Listener{Protocol: p, Address: netip.MustParseAddr(a), Port: port, DualStack: dual}
	}
	want := sortedUnique([]Listener{
		l(TCP, "10.1.2.3", 8080, false),
		l(TCP, "0.0.0.0", 10250, false),
		l(TCP, "fd00::3", 8443, false),
		l(TCP, "::", 9090, false),
		l(TCP, "::", 22, true),
		l(TCP, "10.1.2.3", 81, false),
		l(TCP, "127.0.0.1", 7000, false),
		l(UDP, "0.0.0.0", 53, false),
		l(UDP, "10.1.2.3", 5353, false),
		l(UDP, "fd00::3", 547, false),
		l(UDP, "::", 4789, true),
		l(UDP, "::", 8472, false),
	})
	got, err := Netlink{}.Listeners()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("listeners: %v", got)
	if !slices.Equal(got, want) {
		t.Errorf("Listeners =\n%v\nwant\n%v", got, want)
	}
}
