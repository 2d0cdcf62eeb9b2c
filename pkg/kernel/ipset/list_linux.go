//go:build linux

package ipset

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/nlmsg"
)

// The rest of the ipset netlink protocol that reading a set's entries takes
// (include/uapi/linux/netfilter/ipset/ip_set.h).
const (
	ipsetAttrTypeName = 3
	ipsetAttrFamily   = 5
	ipsetAttrADT      = 8 // the entries of a listed set, each in an IPSET_ATTR_DATA

	// Inside an entry's or a header's IPSET_ATTR_DATA.
	ipsetAttrIP     = 1 // nested: ipsetAttrIPv4 or ipsetAttrIPv6
	ipsetAttrCIDR   = 3
	ipsetAttrPort   = 4 // also the first port of a bitmap:port set's range
	ipsetAttrPortTo = 5
	ipsetAttrProto  = 7
	ipsetAttrIP2    = 20
	ipsetAttrCIDR2  = 21

	ipsetAttrIPv4 = 1
	ipsetAttrIPv6 = 2

	nfprotoIPv4 = 2
	nfprotoIPv6 = 10
)

// errNotDecoded: the set holds something this reader does not spell as `ipset save` does (a set
// type or protocol the proxier never creates); the caller reads the set with the tool instead.
var errNotDecoded = errors.New("not decoded over netlink")

// netlinkList reads the named sets and their entries, one dump per set over a socket of its own
// (IPSET_CMD_LIST with IPSET_ATTR_SETNAME: what `ipset save NAME` asks for, without launching
// it), and spells every entry as `ipset save` prints it, so that what it returns equals
// ParseSave's reading of the tool. A set that does not exist is left out. It works in the
// calling thread's network namespace.
func netlinkList(names []string) ([]Content, error) {
	c, err := nlmsg.Open(unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	out := make([]Content, 0, len(names))
	for _, name := range names {
		var l setListing
		err := nlmsg.RetryInterrupted(3, func() error {
			l = setListing{name: name}
			w := c.Begin()
			w.Nfgenmsg(unix.AF_INET)
			w.Put(ipsetAttrProtocol, []byte{ipsetProtocol})
			w.Str(ipsetAttrSetName, name)
			return c.Do(unix.NFNL_SUBSYS_IPSET<<8|ipsetCmdList, true, func(_ uint16, body []byte) error {
				return l.add(body)
			})
		})
		switch {
		case errors.Is(err, unix.ENOENT):
			continue
		case err != nil:
			return nil, fmt.Errorf("listing ipset %s: %w", name, err)
		case !l.headed:
			return nil, fmt.Errorf("listing ipset %s: %w: no header", name, nlmsg.ErrMalformed)
		}
		out = append(out, l.Content)
	}
	return out, nil
}

// setListing collects one set from the messages of its dump: the first carries the header
// (type, family, range) and the first entries; a set too large for one message continues in
// messages that carry its name and more entries.
type setListing struct {
	Content
	name     string
	headed   bool // a message named the set's type
	read     bool // the header's data was read
	family   uint8
	from, to uint16 // a bitmap:port set's range
	buf      []byte // scratch space for spelling entries
}

func (l *setListing) add(body []byte) error {
	attrs, err := nlmsg.NfnetlinkAttrs(body)
	if err != nil {
		return err
	}
	var name string
	var adt, data []byte
	err = nlmsg.Attrs(attrs, func(typ uint16, v []byte) error {
		switch typ {
		case ipsetAttrSetName:
			name = nulTerminated(v)
		case ipsetAttrTypeName:
			typ := nulTerminated(v)
			if l.headed && typ != l.Type {
				return fmt.Errorf("%w: set %s of type %s, then %s", nlmsg.ErrMalformed, l.name, l.Type, typ)
			}
			l.Type, l.headed = typ, true
		case ipsetAttrFamily:
			if len(v) != 1 {
				return fmt.Errorf("%w: family of %d bytes", nlmsg.ErrMalformed, len(v))
			}
			l.family = v[0]
		case ipsetAttrData:
			data = v
		case ipsetAttrADT:
			adt = v
		}
		return nil
	})
	if err != nil {
		return err
	}
	if name != l.name {
		return fmt.Errorf("%w: a message of set %q in the dump of %q", nlmsg.ErrMalformed, name, l.name)
	}
	if !l.headed {
		return fmt.Errorf("%w: entries before the header", nlmsg.ErrMalformed)
	}
	if !l.read {
		if err := l.header(data); err != nil {
			return err
		}
		l.read = true
	}
	return nlmsg.Attrs(adt, func(typ uint16, v []byte) error {
		if typ != ipsetAttrData {
			return nil
		}
		var e string
		var err error
		e, l.buf, err = l.decodeEntry(v, l.buf)
		if err != nil {
			return fmt.Errorf("an entry of %s: %w", l.name, err)
		}
		l.Entries = append(l.Entries, e)
		return nil
	})
}

// header fills in the set as ParseSave reads a create line: bitmap:port has a range and no
// family, a hash set a family and no range.
func (l *setListing) header(data []byte) error {
	l.Name = l.name
	if l.Type == BitmapPort {
		var from, to uint16
		var haveFrom, haveTo bool
		err := nlmsg.Attrs(data, func(typ uint16, v []byte) (err error) {
			switch typ {
			case ipsetAttrPort:
				from, err = nlmsg.BE16(v)
				haveFrom = true
			case ipsetAttrPortTo:
				to, err = nlmsg.BE16(v)
				haveTo = true
			}
			return err
		})
		if err != nil {
			return err
		}
		if !haveFrom || !haveTo || from > to {
			return fmt.Errorf("%w: bitmap:port set %s without a range", nlmsg.ErrMalformed, l.name)
		}
		l.from, l.to = from, to
		l.Range = fmt.Sprintf("%d-%d", from, to)
		return nil
	}
	switch l.family {
	case nfprotoIPv4:
		l.Family = FamilyInet
	case nfprotoIPv6:
		l.Family = FamilyInet6
	default:
		return fmt.Errorf("set %s of family %d: %w", l.name, l.family, errNotDecoded)
	}
	return nil
}

// entryFields is what an entry of the set types the proxier creates holds.
type entryFields struct {
	ip, ip2          netip.Addr
	port             uint16
	proto            uint8
	cidr, cidr2      uint8
	hasPort, hasCIDR bool
	hasCIDR2         bool
}

// decodeEntry spells one entry of the set as `ipset save` prints it: an address compressed as
// netip prints it, a network without its prefix length when that is the whole address,
// "proto:port" with the protocol's name. buf is scratch space (one allocation per entry, the
// string: the whole-set listing reads tens of thousands). What the kernel never holds in such a
// set (an address of the other family, a network with host bits, a port outside a bitmap's
// range) is an error: the entry would not be what Canonical spells, so the proxier would never
// see it as its own.
func (l *setListing) decodeEntry(data []byte, buf []byte) (string, []byte, error) {
	var f entryFields
	err := nlmsg.Attrs(data, func(t uint16, v []byte) (err error) {
		switch t {
		case ipsetAttrIP:
			f.ip, err = decodeAddr(v)
		case ipsetAttrIP2:
			f.ip2, err = decodeAddr(v)
		case ipsetAttrPort:
			f.port, err = nlmsg.BE16(v)
			f.hasPort = true
		case ipsetAttrProto:
			f.proto, err = u8(v)
		case ipsetAttrCIDR:
			f.cidr, err = u8(v)
			f.hasCIDR = true
		case ipsetAttrCIDR2:
			f.cidr2, err = u8(v)
			f.hasCIDR2 = true
		}
		return err
	})
	if err != nil {
		return "", buf, err
	}
	b, err := f.appendTo(buf[:0], l)
	if err != nil {
		return "", b, err
	}
	return string(b), b, nil
}

func (f *entryFields) appendTo(b []byte, l *setListing) ([]byte, error) {
	typ := l.Type
	missing := func(what string) error {
		return fmt.Errorf("%w: %s entry without %s", nlmsg.ErrMalformed, typ, what)
	}
	if typ != BitmapPort {
		for _, a := range []netip.Addr{f.ip, f.ip2} {
			if a.IsValid() && a.Is4() != (l.Family == FamilyInet) {
				return b, fmt.Errorf("%w: %s in a set of family %s", nlmsg.ErrMalformed, a, l.Family)
			}
		}
	}
	switch typ {
	case BitmapPort:
		if !f.hasPort {
			return b, missing("a port")
		}
		if f.port < l.from || f.port > l.to {
			return b, fmt.Errorf("%w: port %d outside the range %s", nlmsg.ErrMalformed, f.port, l.Range)
		}
		return strconv.AppendUint(b, uint64(f.port), 10), nil
	case HashIP:
		if !f.ip.IsValid() {
			return b, missing("an address")
		}
		return f.ip.AppendTo(b), nil
	case HashNet:
		if !f.ip.IsValid() || !f.hasCIDR {
			return b, missing("a network")
		}
		return appendNetwork(b, f.ip, f.cidr)
	case HashIPPort, HashIPPortIP, HashIPPortNet:
		if !f.ip.IsValid() || !f.hasPort {
			return b, missing("an address and port")
		}
		name := protoName(f.proto)
		if name == "" {
			return b, fmt.Errorf("protocol %d: %w", f.proto, errNotDecoded)
		}
		b = append(append(append(f.ip.AppendTo(b), ','), name...), ':')
		b = strconv.AppendUint(b, uint64(f.port), 10)
		switch typ {
		case HashIPPortIP:
			if !f.ip2.IsValid() {
				return b, missing("a second address")
			}
			return f.ip2.AppendTo(append(b, ',')), nil
		case HashIPPortNet:
			if !f.ip2.IsValid() || !f.hasCIDR2 {
				return b, missing("a network")
			}
			return appendNetwork(append(b, ','), f.ip2, f.cidr2)
		}
		return b, nil
	}
	return b, fmt.Errorf("set type %s: %w", typ, errNotDecoded)
}

// decodeAddr reads an IPSET_ATTR_IP-style nest holding one IPv4 or IPv6 address.
func decodeAddr(v []byte) (netip.Addr, error) {
	var a netip.Addr
	err := nlmsg.Attrs(v, func(t uint16, b []byte) error {
		var ok bool
		switch t {
		case ipsetAttrIPv4:
			a, ok = netip.AddrFromSlice(b)
			ok = ok && len(b) == 4
		case ipsetAttrIPv6:
			a, ok = netip.AddrFromSlice(b)
			ok = ok && len(b) == 16
		default:
			return nil
		}
		if !ok {
			return fmt.Errorf("%w: address of %d bytes", nlmsg.ErrMalformed, len(b))
		}
		return nil
	})
	if err == nil && !a.IsValid() {
		err = fmt.Errorf("%w: address nest without an address", nlmsg.ErrMalformed)
	}
	return a, err
}

// appendNetwork spells a network as ipset does: no prefix length when it covers one address.
// The kernel holds networks of 1 to all bits, host bits cleared.
func appendNetwork(b []byte, a netip.Addr, bits uint8) ([]byte, error) {
	if bits == 0 || int(bits) > a.BitLen() || netip.PrefixFrom(a, int(bits)).Masked().Addr() != a {
		return b, fmt.Errorf("%w: %s/%d", nlmsg.ErrMalformed, a, bits)
	}
	b = a.AppendTo(b)
	if int(bits) == a.BitLen() {
		return b, nil
	}
	return strconv.AppendUint(append(b, '/'), uint64(bits), 10), nil
}

// protoName names the protocols the proxier's sets hold ("" for others: ipset spells icmp
// types and protocols without a port in ways the proxier never writes).
func protoName(proto uint8) string {
	switch proto {
	case unix.IPPROTO_TCP:
		return "tcp"
	case unix.IPPROTO_UDP:
		return "udp"
	case unix.IPPROTO_SCTP:
		return "sctp"
	}
	return ""
}

func u8(v []byte) (uint8, error) {
	if len(v) != 1 {
		return 0, fmt.Errorf("%w: u8 of %d bytes", nlmsg.ErrMalformed, len(v))
	}
	return v[0], nil
}
