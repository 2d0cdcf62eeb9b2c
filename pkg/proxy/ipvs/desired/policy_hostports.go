package desired

import (
	"net/netip"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/objects"
)

// An externalIP (or ingress IP) equal to this node's address is served through IPVS without
// a binding, as upstream does, and IPVS takes every packet to that address and port before
// any socket sees it: a Service naming the node's address with port 10250 or 22 cuts the
// kubelet or sshd off. The guard refuses such an address on a port a host process listens on,
// as sock_diag reports the node's sockets.

// HostListeners are the node's listening sockets, by protocol and port.
type HostListeners map[hostPort][]objects.Listener

type hostPort struct {
	protocol objects.Protocol
	port     uint16
}

// NewHostListeners indexes listening sockets by protocol and port.
func NewHostListeners(ls []objects.Listener) HostListeners {
	ls = slices.Clone(ls)
	slices.SortFunc(ls, func(a, b objects.Listener) int { return strings.Compare(a.String(), b.String()) })
	out := HostListeners{}
	for _, l := range slices.Compact(ls) {
		k := hostPort{l.Protocol, l.Port}
		out[k] = append(out[k], l)
	}
	return out
}

// find returns a listener that receives what is sent to addr:port over protocol.
func (h HostListeners) find(protocol v1.Protocol, addr netip.Addr, port int) (objects.Listener, bool) {
	if !validPort(port) {
		return objects.Listener{}, false
	}
	for _, l := range h[hostPort{objects.Protocol(protocol), uint16(port)}] {
		if l.Covers(addr) {
			return l, true
		}
	}
	return objects.Listener{}, false
}

// Equal reports whether two indexes hold the same listeners.
func (h HostListeners) Equal(o HostListeners) bool {
	if len(h) != len(o) {
		return false
	}
	for k, ls := range h {
		if !slices.Equal(ls, o[k]) {
			return false
		}
	}
	return true
}

// IsOwnAddress reports whether a is this node's: on one of its interfaces or in its Node
// object.
func (ctx *NodeContext) IsOwnAddress(a netip.Addr) bool {
	return ctx.LocalAddresses[a] || ctx.OwnNodeAddresses[a]
}
