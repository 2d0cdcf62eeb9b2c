// Package netdev is the kernel adapter for links and addresses over rtnetlink: the kube-ipvs0
// dummy link and the service addresses bound to it, the node's local addresses, and VXLAN links.
package netdev

import (
	"context"
	"errors"
	"net/netip"
)

// ErrLinkNotFound is returned when the named link does not exist.
var ErrLinkNotFound = errors.New("link not found")

// Interface is what the proxier needs from rtnetlink. Implementations: Netlink and Fake.
type Interface interface {
	// EnsureDummy creates the dummy link if it is missing and leaves it down, as upstream does.
	// It reports whether it created the link.
	EnsureDummy(name string) (created bool, err error)
	// DeleteLink deletes the link; a missing link is not an error.
	DeleteLink(name string) error
	// ListAddresses returns the addresses bound to the link (ErrLinkNotFound if it is missing).
	ListAddresses(link string) ([]netip.Addr, error)
	// AddAddress binds addr to the link as a /32 or /128; binding an address already bound is not an error.
	AddAddress(link string, addr netip.Addr) error
	// AddAddresses binds addresses as AddAddress does, in as few round trips as it can (a cold
	// start binds one per Service). refused is called with the index and error of each address
	// that was not bound; the others are. A returned error means the link is missing or a round
	// trip failed: which addresses were bound is then unknown.
	AddAddresses(link string, addrs []netip.Addr, refused func(i int, err error)) error
	// DeleteAddress unbinds addr from the link; an address not bound is not an error.
	DeleteAddress(link string, addr netip.Addr) error
	// DeleteAddresses unbinds addresses as DeleteAddress does, in as few round trips as it can,
	// reporting refusals and failures as AddAddresses does.
	DeleteAddresses(link string, addrs []netip.Addr, refused func(i int, err error)) error
	// LocalAddresses returns the addresses of every link except the excluded one (kube-ipvs0):
	// the addresses NodePorts are served on.
	LocalAddresses(exclude string) ([]netip.Addr, error)
	// VXLANPorts returns the UDP destination ports of the VXLAN links present on the node.
	VXLANPorts() ([]uint16, error)
	// WatchAddresses calls changed when an address LocalAddresses(exclude) would report (not
	// loopback, not IPv6 link-local) is added to or removed from a link other than exclude (the
	// proxier's own bindings on kube-ipvs0 must not wake it), until ctx is done. It returns once
	// subscribed, so a read of the addresses made after it returns misses no later change, or
	// with the error that prevented subscribing. A subscription that fails later (the kernel
	// drops notifications when they come faster than they are read) is renewed, retrying with a
	// growing delay, and changed is called once it is: changes may have been missed. Calls are
	// serialized; a burst may come as one call, and a call may come when nothing the caller
	// sees has changed. changed should return quickly (signal, not sync): while it runs,
	// notifications queue in the kernel.
	WatchAddresses(ctx context.Context, exclude string, changed func()) error
}
