// Package objects holds the value types of the kernel objects the adapters read and write: IPVS
// virtual and real servers, ipsets, listening sockets. It does no I/O and imports no adapter, so
// the desired state (pkg/proxy/ipvs/desired) can describe kernel objects without linking the code
// that writes them. The adapters (pkg/kernel/ipvs, ipset, sockdiag) name these types by alias.
package objects

import (
	"fmt"
	"net/netip"
)

// Protocol is a transport protocol, spelled as Kubernetes spells it.
type Protocol string

const (
	TCP  Protocol = "TCP"
	UDP  Protocol = "UDP"
	SCTP Protocol = "SCTP"
)

// Flags of an IPVS virtual server, with the kernel's values (IP_VS_SVC_F_*).
type Flags uint32

const (
	FlagPersistent Flags = 0x0001 // ClientIP session affinity
	FlagHashed     Flags = 0x0002 // set by the kernel on every service; ignored when comparing
	FlagSchedSH1   Flags = 0x0008 // IP_VS_SVC_F_SCHED1: sh/mh fallback
	FlagSchedSH2   Flags = 0x0010 // IP_VS_SVC_F_SCHED2: sh/mh port
	FlagSchedSH3   Flags = 0x0020 // IP_VS_SVC_F_SCHED3
)

// Key identifies an IPVS virtual server: address, protocol and port.
type Key struct {
	Address  netip.Addr
	Protocol Protocol
	Port     uint16
}

func (k Key) String() string {
	return fmt.Sprintf("%s/%s", netip.AddrPortFrom(k.Address, k.Port), k.Protocol)
}

// VirtualServer is an IPVS service. Comparable: two values are equal when the kernel object
// needs no update.
type VirtualServer struct {
	Key
	Scheduler string
	Flags     Flags  // without FlagHashed
	Timeout   uint32 // persistence timeout in seconds (with FlagPersistent)
}

// RealServer is an IPVS destination of a virtual server. Forwarding is always masquerade (NAT).
type RealServer struct {
	Address netip.Addr
	Port    uint16
	Weight  int
}

func (r RealServer) String() string { return netip.AddrPortFrom(r.Address, r.Port).String() }

// IPSet describes an ipset as the proxier creates it.
type IPSet struct {
	Name    string
	Type    string // "hash:ip,port", "hash:ip,port,ip", "hash:ip,port,net", "hash:net", "bitmap:port"
	Family  string // "inet" or "inet6" (ignored for bitmap:port)
	Comment string // upstream's comment text, kept for `ipset list` readers
	// Range is bitmap:port's port range, e.g. "0-65535".
	Range string
}

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
