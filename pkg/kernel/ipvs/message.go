//go:build linux

package ipvs

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/nlmsg"
)

// The IPVS generic netlink protocol (include/uapi/linux/ip_vs.h): a request is a genl header
// (command, version 1) followed by one nested attribute for the service and, for real-server
// commands, one for the destination. Dumps answer with one message per object, laid out the same.
const (
	genlVersion = 1

	cmdNewService = 1
	cmdSetService = 2
	cmdDelService = 3
	cmdGetService = 4
	cmdNewDest    = 5
	cmdSetDest    = 6
	cmdDelDest    = 7
	cmdGetDest    = 8

	attrService = 1 // IPVS_CMD_ATTR_SERVICE
	attrDest    = 2 // IPVS_CMD_ATTR_DEST

	svcAF        = 1 // u16
	svcProtocol  = 2 // u16
	svcAddr      = 3 // 4 or 16 bytes (the kernel answers with 16)
	svcPort      = 4 // u16, network order
	svcFWMark    = 5 // u32
	svcSchedName = 6 // NUL-terminated string
	svcFlags     = 7 // struct ip_vs_flags {u32 flags; u32 mask}
	svcTimeout   = 8 // u32 seconds
	svcNetmask   = 9 // u32

	destAddr        = 1  // 4 or 16 bytes
	destPort        = 2  // u16, network order
	destFwdMethod   = 3  // u32
	destWeight      = 4  // u32 (the kernel holds it signed)
	destUThresh     = 5  // u32
	destLThresh     = 6  // u32
	destActiveConns = 7  // u32
	destInactConns  = 8  // u32
	destAddrFamily  = 11 // u16, kernels since 4.15
	fwdMasq         = 0  // IP_VS_CONN_F_MASQ
)

// Netmasks as upstream kube-proxy programs them: a host mask, in the kernel's per-family spelling
// (a 32-bit mask for IPv4, a prefix length for IPv6).
const (
	netmaskV4 = 0xffffffff
	netmaskV6 = 128
)

// putService writes the service attribute: with full (new and set) everything the kernel
// requires of a complete service; otherwise only what identifies it (delete, real servers).
func putService(w *nlmsg.Writer, vs VirtualServer, full bool) error {
	k := vs.Key
	if err := validKey(k); err != nil {
		return err
	}
	proto, _ := protocolNumber(k.Protocol)
	af, mask := uint16(unix.AF_INET), uint32(netmaskV4)
	if k.Address.Is6() {
		af, mask = unix.AF_INET6, netmaskV6
	}
	start := w.Nest(attrService)
	w.U16(svcAF, af)
	w.U16(svcProtocol, proto)
	w.Put(svcAddr, k.Address.AsSlice())
	w.BE16(svcPort, k.Port)
	if full {
		w.Str(svcSchedName, vs.Scheduler)
		var fl [8]byte
		binary.NativeEndian.PutUint32(fl[0:], uint32(vs.Flags&^FlagHashed))
		binary.NativeEndian.PutUint32(fl[4:], 0xffffffff) // mask: every flag is as given
		w.Put(svcFlags, fl[:])
		w.U32(svcTimeout, vs.Timeout)
		w.U32(svcNetmask, mask)
	}
	w.End(start)
	return nil
}

// putDest writes the destination attribute. Forwarding is always masquerade; the family is
// sent so a kernel that supports mixed families never guesses.
func putDest(w *nlmsg.Writer, vs Key, rs RealServer, full bool) error {
	if err := validRealServer(vs, rs); err != nil {
		return err
	}
	if rs.Weight < 0 || int64(rs.Weight) > 1<<31-1 {
		return fmt.Errorf("real server %s: weight %d out of range", rs, rs.Weight)
	}
	af := uint16(unix.AF_INET)
	if rs.Address.Is6() {
		af = unix.AF_INET6
	}
	start := w.Nest(attrDest)
	w.Put(destAddr, rs.Address.AsSlice())
	w.BE16(destPort, rs.Port)
	w.U16(destAddrFamily, af)
	if full {
		w.U32(destFwdMethod, fwdMasq)
		w.U32(destWeight, uint32(rs.Weight))
		w.U32(destUThresh, 0)
		w.U32(destLThresh, 0)
	}
	w.End(start)
	return nil
}

// addrAt reads an address attribute of the given family: the kernel sends the 16 bytes of a
// union nf_inet_addr, IPv4 in the first 4.
func addrAt(v []byte, af uint16) (netip.Addr, error) {
	switch {
	case af == unix.AF_INET && len(v) >= 4:
		return netip.AddrFrom4([4]byte(v[:4])), nil
	case af == unix.AF_INET6 && len(v) >= 16:
		return netip.AddrFrom16([16]byte(v[:16])), nil
	}
	return netip.Addr{}, fmt.Errorf("address of %d bytes for family %d", len(v), af)
}

// parseService reads one service of a dump. ok is false for services this adapter does not
// manage: firewall-mark services (no address), unknown protocols or families, and IPv6
// services on an IPv4-mapped address (a Key spells that address as IPv4: another service).
func parseService(msg []byte) (vs VirtualServer, ok bool, err error) {
	attrs, err := nlmsg.Nested(msg, attrService)
	if err != nil || attrs == nil {
		return VirtualServer{}, false, fmt.Errorf("IPVS service message without a service: %w", err)
	}
	var af, proto, port uint16
	var addr, sched []byte
	var fwmark uint32
	var flags, timeout uint32
	err = nlmsg.Attrs(attrs, func(t uint16, v []byte) (err error) {
		switch t {
		case svcAF:
			af, err = nlmsg.U16(v)
		case svcProtocol:
			proto, err = nlmsg.U16(v)
		case svcAddr:
			addr = v
		case svcPort:
			port, err = nlmsg.BE16(v)
		case svcFWMark:
			fwmark, err = nlmsg.U32(v)
		case svcSchedName:
			sched = v
		case svcFlags:
			flags, err = nlmsg.U32(v)
		case svcTimeout:
			timeout, err = nlmsg.U32(v)
		}
		return err
	})
	if err != nil {
		return VirtualServer{}, false, err
	}
	p, known := protocolName(proto)
	if fwmark != 0 || addr == nil || !known || (af != unix.AF_INET && af != unix.AF_INET6) {
		return VirtualServer{}, false, nil
	}
	a, err := addrAt(addr, af)
	if err != nil {
		return VirtualServer{}, false, err
	}
	if a.Is4In6() {
		return VirtualServer{}, false, nil
	}
	return VirtualServer{
		Key:       Key{Address: a, Protocol: p, Port: port},
		Scheduler: cString(sched),
		Flags:     Flags(flags) &^ FlagHashed,
		Timeout:   timeout,
	}, true, nil
}

// parseDest reads one destination of a dump of vs's real servers. Kernels before 4.15 send
// no family: it is then the virtual server's.
func parseDest(msg []byte, vs Key) (RealServerStatus, error) {
	attrs, err := nlmsg.Nested(msg, attrDest)
	if err != nil || attrs == nil {
		return RealServerStatus{}, fmt.Errorf("IPVS destination message without a destination: %w", err)
	}
	af := uint16(unix.AF_INET)
	if vs.Address.Is6() {
		af = unix.AF_INET6
	}
	var addr []byte
	var port uint16
	var weight, active, inactive uint32
	err = nlmsg.Attrs(attrs, func(t uint16, v []byte) (err error) {
		switch t {
		case destAddr:
			addr = v
		case destPort:
			port, err = nlmsg.BE16(v)
		case destWeight:
			weight, err = nlmsg.U32(v)
		case destActiveConns:
			active, err = nlmsg.U32(v)
		case destInactConns:
			inactive, err = nlmsg.U32(v)
		case destAddrFamily:
			af, err = nlmsg.U16(v)
		}
		return err
	})
	if err != nil {
		return RealServerStatus{}, err
	}
	a, err := addrAt(addr, af)
	if err != nil {
		return RealServerStatus{}, err
	}
	if weight > 1<<31-1 {
		return RealServerStatus{}, fmt.Errorf("%w: weight %d", nlmsg.ErrMalformed, weight)
	}
	return RealServerStatus{
		RealServer:          RealServer{Address: a, Port: port, Weight: int(weight)},
		ActiveConnections:   int(active),
		InactiveConnections: int(inactive),
	}, nil
}

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
