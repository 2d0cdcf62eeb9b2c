package netdev

import (
	"fmt"
	"net/netip"
	"slices"
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

// validAddr rejects addresses the kernel would store under another spelling (IPv4-mapped IPv6
// is bound as IPv4) and so could never be found again by ListAddresses.
func validAddr(a netip.Addr) error {
	switch {
	case !a.IsValid():
		return fmt.Errorf("invalid address")
	case a.Is4In6():
		return fmt.Errorf("address %s is IPv4-mapped IPv6; use the IPv4 form", a)
	case a.Zone() != "":
		return fmt.Errorf("address %s has a zone", a)
	}
	return nil
}
