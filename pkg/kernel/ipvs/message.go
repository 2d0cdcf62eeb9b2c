//go:build linux

package ipvs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
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

	destAddr         = 1  // 4 or 16 bytes
	destPort         = 2  // u16, network order
	destFwdMethod    = 3  // u32
	destWeight       = 4  // u32 (the kernel holds it signed)
	destUThresh      = 5  // u32
	destLThresh      = 6  // u32
	destActiveConns  = 7  // u32
	destInactConns   = 8  // u32
	destAddrFamily   = 11 // u16, kernels since 4.15
	fwdMasq          = 0  // IP_VS_CONN_F_MASQ
	nlaTypeMask      = 0x3fff
	nlaHeaderLen     = 4
	genlHeaderLength = 4
)

// attrWriter appends netlink attributes to a reused buffer (host byte order, 4-byte aligned).
type attrWriter struct{ b []byte }

func (w *attrWriter) put(typ uint16, payload []byte) {
	w.header(typ, len(payload))
	w.b = append(w.b, payload...)
	w.pad()
}

func (w *attrWriter) header(typ uint16, payloadLen int) {
	w.b = binary.NativeEndian.AppendUint16(w.b, uint16(nlaHeaderLen+payloadLen))
	w.b = binary.NativeEndian.AppendUint16(w.b, typ)
}

func (w *attrWriter) pad() {
	for len(w.b)%4 != 0 {
		w.b = append(w.b, 0)
	}
}

func (w *attrWriter) u16(typ, v uint16) {
	w.header(typ, 2)
	w.b = binary.NativeEndian.AppendUint16(w.b, v)
	w.pad()
}

func (w *attrWriter) be16(typ, v uint16) {
	w.header(typ, 2)
	w.b = binary.BigEndian.AppendUint16(w.b, v)
	w.pad()
}

func (w *attrWriter) u32(typ uint16, v uint32) {
	w.header(typ, 4)
	w.b = binary.NativeEndian.AppendUint32(w.b, v)
}

func (w *attrWriter) str(typ uint16, s string) {
	w.header(typ, len(s)+1)
	w.b = append(w.b, s...)
	w.b = append(w.b, 0)
	w.pad()
}

// nest starts a nested attribute; end(start) writes its length once its children are in.
func (w *attrWriter) nest(typ uint16) int {
	start := len(w.b)
	w.header(typ, 0)
	return start
}

func (w *attrWriter) end(start int) {
	binary.NativeEndian.PutUint16(w.b[start:], uint16(len(w.b)-start))
}

// Netmasks as upstream kube-proxy programs them: a host mask, in the kernel's per-family spelling
// (a 32-bit mask for IPv4, a prefix length for IPv6).
const (
	netmaskV4 = 0xffffffff
	netmaskV6 = 128
)

// putService writes the service attribute: with full (new and set) everything the kernel
// requires of a complete service; otherwise only what identifies it (delete, real servers).
func putService(w *attrWriter, vs VirtualServer, full bool) error {
	k := vs.Key
	if err := validKey(k); err != nil {
		return err
	}
	proto, _ := protocolNumber(k.Protocol)
	af, mask := uint16(unix.AF_INET), uint32(netmaskV4)
	if k.Address.Is6() {
		af, mask = unix.AF_INET6, netmaskV6
	}
	start := w.nest(attrService)
	w.u16(svcAF, af)
	w.u16(svcProtocol, proto)
	w.put(svcAddr, k.Address.AsSlice())
	w.be16(svcPort, k.Port)
	if full {
		w.str(svcSchedName, vs.Scheduler)
		var fl [8]byte
		binary.NativeEndian.PutUint32(fl[0:], uint32(vs.Flags&^FlagHashed))
		binary.NativeEndian.PutUint32(fl[4:], 0xffffffff) // mask: every flag is as given
		w.put(svcFlags, fl[:])
		w.u32(svcTimeout, vs.Timeout)
		w.u32(svcNetmask, mask)
	}
	w.end(start)
	return nil
}

// putDest writes the destination attribute. Forwarding is always masquerade; the family is
// sent so a kernel that supports mixed families never guesses.
func putDest(w *attrWriter, vs Key, rs RealServer, full bool) error {
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
	start := w.nest(attrDest)
	w.put(destAddr, rs.Address.AsSlice())
	w.be16(destPort, rs.Port)
	w.u16(destAddrFamily, af)
	if full {
		w.u32(destFwdMethod, fwdMasq)
		w.u32(destWeight, uint32(rs.Weight))
		w.u32(destUThresh, 0)
		w.u32(destLThresh, 0)
	}
	w.end(start)
	return nil
}

var errShortAttr = errors.New("malformed netlink attribute")

// eachAttr calls f for every attribute in b, with its type (flags masked off) and payload.
func eachAttr(b []byte, f func(typ uint16, v []byte) error) error {
	for len(b) >= nlaHeaderLen {
		l := int(binary.NativeEndian.Uint16(b))
		if l < nlaHeaderLen || l > len(b) {
			return errShortAttr
		}
		if err := f(binary.NativeEndian.Uint16(b[2:])&nlaTypeMask, b[nlaHeaderLen:l]); err != nil {
			return err
		}
		l = (l + 3) &^ 3
		if l >= len(b) {
			return nil
		}
		b = b[l:]
	}
	return nil
}

// nested returns the payload of the first attribute of type typ in msg (a genl message's
// attributes), or nil.
func nested(msg []byte, typ uint16) ([]byte, error) {
	var out []byte
	err := eachAttr(msg, func(t uint16, v []byte) error {
		if t == typ && out == nil {
			out = v
		}
		return nil
	})
	return out, err
}

func u16At(v []byte) (uint16, error) {
	if len(v) < 2 {
		return 0, errShortAttr
	}
	return binary.NativeEndian.Uint16(v), nil
}

func u32At(v []byte) (uint32, error) {
	if len(v) < 4 {
		return 0, errShortAttr
	}
	return binary.NativeEndian.Uint32(v), nil
}

func be16At(v []byte) (uint16, error) {
	if len(v) < 2 {
		return 0, errShortAttr
	}
	return binary.BigEndian.Uint16(v), nil
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
// manage: firewall-mark services (no address) and unknown protocols or families.
func parseService(msg []byte) (vs VirtualServer, ok bool, err error) {
	attrs, err := nested(msg, attrService)
	if err != nil || attrs == nil {
		return VirtualServer{}, false, fmt.Errorf("IPVS service message without a service: %w", err)
	}
	var af, proto, port uint16
	var addr, sched []byte
	var fwmark uint32
	var flags, timeout uint32
	err = eachAttr(attrs, func(t uint16, v []byte) (err error) {
		switch t {
		case svcAF:
			af, err = u16At(v)
		case svcProtocol:
			proto, err = u16At(v)
		case svcAddr:
			addr = v
		case svcPort:
			port, err = be16At(v)
		case svcFWMark:
			fwmark, err = u32At(v)
		case svcSchedName:
			sched = v
		case svcFlags:
			flags, err = u32At(v)
		case svcTimeout:
			timeout, err = u32At(v)
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
	attrs, err := nested(msg, attrDest)
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
	err = eachAttr(attrs, func(t uint16, v []byte) (err error) {
		switch t {
		case destAddr:
			addr = v
		case destPort:
			port, err = be16At(v)
		case destWeight:
			weight, err = u32At(v)
		case destActiveConns:
			active, err = u32At(v)
		case destInactConns:
			inactive, err = u32At(v)
		case destAddrFamily:
			af, err = u16At(v)
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
	return RealServerStatus{
		RealServer:          RealServer{Address: a, Port: port, Weight: int(int32(weight))},
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
