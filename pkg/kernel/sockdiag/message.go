//go:build linux

package sockdiag

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/nlmsg"
)

// The inet_diag protocol (include/uapi/linux/inet_diag.h): a dump request is a struct
// inet_diag_req_v2 naming a family, a protocol and a bitmask of TCP states; the kernel answers
// with a struct inet_diag_msg per socket, followed by attributes.
const (
	reqLen = 56 // struct inet_diag_req_v2: family, protocol, ext, pad, states, struct inet_diag_sockid
	msgLen = 72 // struct inet_diag_msg: family, state, timer, retrans, inet_diag_sockid, 5 u32

	attrSKV6Only = 11 // INET_DIAG_SKV6ONLY: u8, for IPv6 sockets in LISTEN or CLOSE
	attrLocals   = 12 // INET_DIAG_LOCALS: SCTP's bound addresses, a sockaddr_storage each

	sockaddrStorageLen = 128

	// The kernel's TCP states, which UDP and SCTP sockets use too: an unconnected UDP socket is
	// in CLOSE, a connected one in ESTABLISHED.
	stateListen = 10 // TCP_LISTEN
	stateClose  = 7  // TCP_CLOSE
)

// listenState is the state of a socket of proto that a process listens on.
func listenState(proto Protocol) uint8 {
	if proto == UDP {
		return stateClose
	}
	return stateListen
}

func protocolNumber(proto Protocol) uint8 {
	switch proto {
	case UDP:
		return unix.IPPROTO_UDP
	case SCTP:
		return unix.IPPROTO_SCTP
	}
	return unix.IPPROTO_TCP
}

// putRequest appends a dump request for proto's sockets of family in the listening state only.
// The state bitmask is what keeps the dump small: for TCP the kernel then walks its listening
// hash alone and never the established one, however many connections the node holds.
func putRequest(w *nlmsg.Writer, family uint8, proto Protocol) {
	var req [reqLen]byte
	req[0], req[1] = family, protocolNumber(proto)
	binary.NativeEndian.PutUint32(req[4:], 1<<listenState(proto))
	w.B = append(w.B, req[:]...) // the socket id stays zero: no filter on addresses or ports
}

// appendListeners reads one inet_diag_msg of a dump of proto's sockets and appends the
// listeners it describes: none for a socket not listening (a dump of another state, or a
// UDP socket without a port), several for an SCTP socket bound to several addresses. A
// malformed message appends nothing.
func appendListeners(out []Listener, proto Protocol, b []byte) ([]Listener, error) {
	if len(b) < msgLen {
		return out, fmt.Errorf("%w: inet_diag_msg of %d bytes", nlmsg.ErrMalformed, len(b))
	}
	family, state := b[0], b[1]
	port := binary.BigEndian.Uint16(b[4:6])
	src, ok := sockAddr(family, b[8:24])
	if !ok {
		return out, fmt.Errorf("%w: socket of family %d", nlmsg.ErrMalformed, family)
	}
	var locals []byte
	v6only, haveV6only := false, false
	err := nlmsg.Attrs(b[msgLen:], func(typ uint16, v []byte) error {
		switch typ {
		case attrSKV6Only:
			if len(v) != 1 {
				return fmt.Errorf("%w: INET_DIAG_SKV6ONLY of %d bytes", nlmsg.ErrMalformed, len(v))
			}
			v6only, haveV6only = v[0] != 0, true
		case attrLocals:
			if len(v)%sockaddrStorageLen != 0 {
				return fmt.Errorf("%w: INET_DIAG_LOCALS of %d bytes", nlmsg.ErrMalformed, len(v))
			}
			locals = v
		}
		return nil
	})
	if err != nil {
		return out, err
	}
	if state != listenState(proto) || port == 0 {
		return out, nil
	}
	// Without the attribute (kernels before 4.x did not send it) a socket on :: is taken to
	// receive IPv4 too: net.ipv6.bindv6only is 0 unless changed, and reporting more listeners
	// than there are only makes the proxier more careful.
	dual := family == unix.AF_INET6 && !(haveV6only && v6only)
	add := func(a netip.Addr) {
		out = append(out, Listener{Protocol: proto, Address: a, Port: port,
			DualStack: dual && a.Is6() && a.IsUnspecified()})
	}
	if proto != SCTP || locals == nil {
		add(src)
		return out, nil
	}
	start := len(out)
	for ; len(locals) > 0; locals = locals[sockaddrStorageLen:] {
		sa := locals[:sockaddrStorageLen]
		a, ok := sockaddrAddr(sa)
		if !ok {
			return out[:start], fmt.Errorf("%w: SCTP local address of family %d", nlmsg.ErrMalformed, binary.NativeEndian.Uint16(sa))
		}
		add(a)
	}
	return out, nil
}

// sockAddr reads a socket id's address (four big-endian words, IPv4 in the first). An IPv6
// socket bound to an IPv4-mapped address receives IPv4 only: it is that IPv4 address.
func sockAddr(family uint8, b []byte) (netip.Addr, bool) {
	switch family {
	case unix.AF_INET:
		return netip.AddrFrom4([4]byte(b[:4])), true
	case unix.AF_INET6:
		return netip.AddrFrom16([16]byte(b[:16])).Unmap(), true
	}
	return netip.Addr{}, false
}

// sockaddrAddr reads the address of a struct sockaddr_in or sockaddr_in6 (family in host
// order, then the port, then for IPv6 the flow label before the address).
func sockaddrAddr(sa []byte) (netip.Addr, bool) {
	switch binary.NativeEndian.Uint16(sa) {
	case unix.AF_INET:
		return netip.AddrFrom4([4]byte(sa[4:8])), true
	case unix.AF_INET6:
		return netip.AddrFrom16([16]byte(sa[8:24])).Unmap(), true
	}
	return netip.Addr{}, false
}
