package netdev

import (
	"net/netip"
	"slices"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/kaddr"
)

// DefaultVXLANPort is the UDP port Linux gives a VXLAN link created without a destination port
// (the vxlan module's udp_port parameter, 8472 by default, the pre-IANA Linux value; 4789 only
// when asked for). The kernel stores the resolved port, so it is what a link dump reports; 0 is
// mapped to it only in case a dump ever lacks the attribute.
const DefaultVXLANPort = 8472

// isLocalServing reports whether a node address is one NodePorts are served on. As upstream
// kube-proxy: loopback addresses and IPv6 link-local addresses are not (an IPv4 link-local
// 169.254/16 address is).
func isLocalServing(a netip.Addr) bool {
	return a.IsValid() && !a.IsLoopback() && !(a.Is6() && a.IsLinkLocalUnicast())
}

// sortedUnique sorts addresses and drops duplicates: an address may be bound to several links.
func sortedUnique(addrs []netip.Addr) []netip.Addr {
	slices.SortFunc(addrs, netip.Addr.Compare)
	return slices.Compact(addrs)
}

// validAddr: see kaddr.Check.
func validAddr(a netip.Addr) error { return kaddr.Check(a) }
