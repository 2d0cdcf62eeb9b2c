package ipset

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Set types and families as ipset spells them.
const (
	HashIP        = "hash:ip"
	HashIPPort    = "hash:ip,port"
	HashIPPortIP  = "hash:ip,port,ip"
	HashIPPortNet = "hash:ip,port,net"
	HashNet       = "hash:net"
	BitmapPort    = "bitmap:port"

	FamilyInet  = "inet"
	FamilyInet6 = "inet6"

	// DefaultPortRange is the bitmap:port range upstream creates its sets with.
	DefaultPortRange = "0-65535"
)

// AsListed returns s as List reports the set after Apply created it: the kernel keeps no set
// comment (upstream never creates sets with the comment extension), a bitmap:port set has no
// family and a hash set no range, and the defaults are filled in. Compare desired sets with
// listed ones through it.
func AsListed(s Set) Set {
	s.Comment = ""
	if s.Type == BitmapPort {
		s.Family = ""
		if s.Range == "" {
			s.Range = DefaultPortRange
		}
	} else {
		s.Range = ""
		if s.Family == "" {
			s.Family = FamilyInet
		}
	}
	return s
}

// Canonical returns entry as `ipset save` prints it for set s, or the error ipset would report
// when adding it. Render desired entries through it so they compare equal to listed ones:
// ipset defaults the protocol to tcp, lowercases it, compresses IPv6 addresses, masks networks,
// drops a /32 or /128 suffix, and stores only the port of a bitmap:port entry.
func Canonical(s Set, entry string) (string, error) {
	s = AsListed(s)
	parts := strings.Split(entry, ",")
	var kinds []string
	switch s.Type {
	case HashIP:
		kinds = []string{"ip"}
	case HashIPPort:
		kinds = []string{"ip", "port"}
	case HashIPPortIP:
		kinds = []string{"ip", "port", "ip"}
	case HashIPPortNet:
		kinds = []string{"ip", "port", "net"}
	case HashNet:
		kinds = []string{"net"}
	case BitmapPort:
		if len(parts) != 1 {
			return "", fmt.Errorf("entry %q: want a port", entry)
		}
		return bitmapPort(s.Range, entry)
	default:
		return "", fmt.Errorf("unsupported set type %q", s.Type)
	}
	if len(parts) != len(kinds) {
		return "", fmt.Errorf("entry %q does not fit %s", entry, s.Type)
	}
	for i, k := range kinds {
		var err error
		switch k {
		case "ip":
			parts[i], err = canonicalIP(s.Family, parts[i])
		case "port":
			parts[i], err = canonicalProtoPort(parts[i])
		case "net":
			parts[i], err = canonicalNet(s.Family, parts[i])
		}
		if err != nil {
			return "", fmt.Errorf("entry %q: %w", entry, err)
		}
	}
	return strings.Join(parts, ","), nil
}

func parseFamilyAddr(family, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("cannot parse %q as an address", s)
	}
	if (family == FamilyInet) != a.Is4() {
		return netip.Addr{}, fmt.Errorf("%s is not an %s address", s, family)
	}
	return a, nil
}

func canonicalIP(family, s string) (string, error) {
	a, err := parseFamilyAddr(family, s)
	return a.String(), err
}

func canonicalNet(family, s string) (string, error) {
	addr, bitsStr, hasBits := strings.Cut(s, "/")
	a, err := parseFamilyAddr(family, addr)
	if err != nil {
		return "", err
	}
	if !hasBits {
		return a.String(), nil
	}
	bits, err := strconv.Atoi(bitsStr)
	if err != nil || bits <= 0 || bits > a.BitLen() {
		return "", fmt.Errorf("invalid prefix length in %q", s)
	}
	if bits == a.BitLen() {
		return a.String(), nil
	}
	return netip.PrefixFrom(a, bits).Masked().String(), nil
}

var portProtocols = map[string]bool{"tcp": true, "udp": true, "sctp": true, "udplite": true}

func canonicalProtoPort(s string) (string, error) {
	proto, port, hasProto := strings.Cut(s, ":")
	if !hasProto {
		proto, port = "tcp", s
	}
	proto = strings.ToLower(proto)
	if !portProtocols[proto] {
		return "", fmt.Errorf("unsupported protocol %q", proto)
	}
	p, err := parsePort(port)
	if err != nil {
		return "", err
	}
	return proto + ":" + strconv.Itoa(p), nil
}

func bitmapPort(portRange, s string) (string, error) {
	if _, port, ok := strings.Cut(s, ":"); ok {
		s = port
	}
	p, err := parsePort(s)
	if err != nil {
		return "", err
	}
	lo, hi, err := parseRange(portRange)
	if err != nil {
		return "", err
	}
	if p < lo || p > hi {
		return "", fmt.Errorf("port %d is out of the range %s of the set", p, portRange)
	}
	return strconv.Itoa(p), nil
}

func parsePort(s string) (int, error) {
	p, err := strconv.Atoi(s)
	if err != nil || p < 0 || p > 65535 {
		return 0, fmt.Errorf("invalid port %q", s)
	}
	return p, nil
}

func parseRange(r string) (int, int, error) {
	a, b, ok := strings.Cut(r, "-")
	lo, err1 := parsePort(a)
	hi, err2 := parsePort(b)
	if !ok || err1 != nil || err2 != nil || lo > hi {
		return 0, 0, fmt.Errorf("invalid port range %q", r)
	}
	return lo, hi, nil
}
