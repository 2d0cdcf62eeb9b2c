// Package sockdiag is the kernel adapter for the sockets host processes listen on, read over
// sock_diag (NETLINK_SOCK_DIAG): what `ss -ltu` shows. The proxier uses it to refuse to capture
// a node address on a port a host process serves (kubelet's 10250, sshd's 22) as an externalIP.
package sockdiag

import (
	"cmp"
	"slices"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/objects"
)

// The value types live in pkg/kernel/objects, which the desired state imports without linking
// this adapter.
type (
	Protocol = objects.Protocol
	Listener = objects.Listener
)

// The protocols.
const TCP, UDP, SCTP = objects.TCP, objects.UDP, objects.SCTP

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
