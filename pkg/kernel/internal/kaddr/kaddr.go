// Package kaddr holds the address check shared by the kernel adapters.
package kaddr

import (
	"fmt"
	"net/netip"
)

// Check rejects addresses the kernel would store under another spelling, so that an object
// written with them could never be found again on read-back: an IPv4-mapped IPv6 address is
// stored as plain IPv4, and a zone cannot be expressed to IPVS or in an address message.
func Check(a netip.Addr) error {
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
