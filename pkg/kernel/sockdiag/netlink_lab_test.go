//go:build lab

package sockdiag

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/nstest"
)

// sctpSocket opens an SCTP socket of the family and type, bound to addr:port, and listening
// when listen is set. More addresses are added with SCTP_SOCKOPT_BINDX_ADD, as sctp_bindx does.
func sctpSocket(t *testing.T, family, typ int, listen bool, port int, addrs ...string) {
	t.Helper()
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, unix.IPPROTO_SCTP)
	if err != nil {
		t.Fatalf("SCTP socket: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if family == unix.AF_INET6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range addrs {
		a := netip.MustParseAddr(s)
		if i == 0 {
			var sa unix.Sockaddr = &unix.SockaddrInet6{Port: port, Addr: a.As16()}
			if family == unix.AF_INET {
				sa = &unix.SockaddrInet4{Port: port, Addr: a.As4()}
			}
			if err := unix.Bind(fd, sa); err != nil {
				t.Fatalf("binding %s: %v", s, err)
			}
			continue
		}
		// struct sockaddr_in, packed as sctp_bindx takes it.
		sa := make([]byte, unix.SizeofSockaddrInet4)
		binary.NativeEndian.PutUint16(sa, unix.AF_INET)
		binary.BigEndian.PutUint16(sa[2:], uint16(port))
		copy(sa[4:], a.AsSlice())
		const sctpSockoptBindxAdd = 100
		if err := unix.SetsockoptString(fd, unix.IPPROTO_SCTP, sctpSockoptBindxAdd, string(sa)); err != nil {
			t.Fatalf("adding %s: %v", s, err)
		}
	}
	if listen {
		if err := unix.Listen(fd, 1); err != nil {
			t.Fatal(err)
		}
	}
}

// TestListenersSCTPLab: SCTP listeners on the lab kernel, which has sctp and sctp_diag: one
// socket bound to two addresses is two listeners, a one-to-many socket on :: without
// IPV6_V6ONLY is dual stack, and a socket bound but not listening is not reported.
func TestListenersSCTPLab(t *testing.T) {
	nstest.Enter(t)
	addLoopbackAddrs(t, "10.1.2.3/32", "10.1.2.4/32")
	sctpSocket(t, unix.AF_INET, unix.SOCK_STREAM, true, 3868, "10.1.2.3", "10.1.2.4")
	sctpSocket(t, unix.AF_INET6, unix.SOCK_SEQPACKET, true, 9, "::")
	sctpSocket(t, unix.AF_INET, unix.SOCK_STREAM, false, 2905, "0.0.0.0")
	if !sctpLoaded() {
		t.Fatal("sctpLoaded is false with SCTP sockets open")
	}
	got, err := Netlink{}.Listeners()
	if err != nil {
		t.Fatal(err)
	}
	want := []Listener{
		{Protocol: SCTP, Address: netip.MustParseAddr("10.1.2.3"), Port: 3868},
		{Protocol: SCTP, Address: netip.MustParseAddr("10.1.2.4"), Port: 3868},
		{Protocol: SCTP, Address: netip.IPv6Unspecified(), Port: 9, DualStack: true},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Listeners =\n%v\nwant\n%v", got, want)
	}
}
