// Package sockdiag is the kernel adapter for the sockets host processes listen on, read over
// sock_diag (NETLINK_SOCK_DIAG): what `ss -ltu` shows. The proxier uses it to refuse to capture
// a node address on a port a host process serves (kubelet's 10250, sshd's 22) as an externalIP.
package sockdiag

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
)

// Protocol is a transport protocol, spelled as Kubernetes spells it.
type Protocol string

const (
	TCP  Protocol = "TCP"
	UDP  Protocol = "UDP"
	SCTP Protocol = "SCTP"
)

// Listener is a socket that accepts connections or datagrams sent to Address:Port.
type Listener struct {
	Protocol Protocol
	// Address is the local address the socket is bound to; the unspecified address of a
	// family (0.0.0.0, ::) stands for every address of that family. An IPv6 socket bound to an
	// IPv4-mapped address receives only IPv4, so it is reported as that IPv4 address.
	Address netip.Addr
	Port    uint16
	// DualStack marks an IPv6 socket bound to :: without IPV6_V6ONLY: it also receives IPv4
	// sent to any address (the kernel says so in INET_DIAG_SKV6ONLY).
	DualStack bool
}

func (l Listener) String() string {
	s := fmt.Sprintf("%s/%s", netip.AddrPortFrom(l.Address, l.Port), l.Protocol)
	if l.DualStack {
		s += " (and IPv4)"
	}
	return s
}

// Covers reports whether the listener receives what is sent to addr on its protocol and port.
func (l Listener) Covers(addr netip.Addr) bool {
	addr = addr.Unmap()
	switch {
	case !addr.IsValid():
		return false
	case l.Address == addr:
		return true
	case !l.Address.IsUnspecified():
		return false
	case l.Address.Is4() == addr.Is4():
		return true
	}
	return l.DualStack && addr.Is4()
}

// Interface is what the proxier needs from sock_diag. Implementations: Netlink and Fake.
type Interface interface {
	// Listeners returns every socket of the network namespace that a process listens on: TCP
	// and SCTP sockets in the LISTEN state, and UDP sockets bound to a port and not connected,
	// of both families. A socket bound to several addresses (SCTP) is one Listener per address.
	// The order is unspecified.
	Listeners() ([]Listener, error)
}

// sortedUnique sorts listeners and drops repeats, as Netlink returns them.
func sortedUnique(ls []Listener) []Listener {
	slices.SortFunc(ls, compare)
	return slices.Compact(ls)
}

func compare(a, b Listener) int {
	return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), a.Address.Compare(b.Address),
		cmp.Compare(a.Port, b.Port), boolCompare(a.DualStack, b.DualStack))
}

func boolCompare(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
