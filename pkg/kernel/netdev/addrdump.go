//go:build linux

package netdev

import (
	"fmt"
	"net/netip"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/nlmsg"
)

// addrSocket reads the namespace's addresses with one RTM_GETADDR dump on an rtnetlink socket
// of its own, parsing each message in place, and binds and unbinds addresses in batches
// (addrbatch.go). A node with 10,000 Services holds as many addresses on kube-ipvs0, and every
// sync period's verification lists them twice (the bindings, and the node's own addresses
// without them); netlink.AddrList built a netlink.Addr with its own allocations for each, and
// vishvananda's socket zeroes 64 KiB per datagram. The socket opens at its first use, in the
// namespace of the thread making it (the Netlink's namespace).
type addrSocket struct {
	mu sync.Mutex
	c  *nlmsg.Conn
}

// dump returns the addresses (both families) for which keep is true. A dump the kernel flags as
// interrupted is read again, at most dumpRetries times in all. A nil addrSocket (a Netlink{})
// opens a socket for this dump and closes it after.
func (s *addrSocket) dump(keep func(index int, a netip.Addr) bool) ([]netip.Addr, error) {
	var out []netip.Addr
	err := s.use(func(c *nlmsg.Conn) error {
		return nlmsg.RetryInterrupted(dumpRetries, func() error {
			out = out[:0]
			w := c.Begin()
			w.B = append(w.B, make([]byte, unix.SizeofIfAddrmsg)...) // family AF_UNSPEC: both
			return c.Do(unix.RTM_GETADDR, true, func(typ uint16, body []byte) error {
				if typ != unix.RTM_NEWADDR {
					return nil
				}
				idx, a, ok, err := parseAddrMsg(body)
				if err != nil {
					return err
				}
				if ok && keep(idx, a) {
					out = append(out, a)
				}
				return nil
			})
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// use runs f with the socket, opened if needed and held for f alone. A nil addrSocket (a
// Netlink{}) opens a socket for f and closes it after.
func (s *addrSocket) use(f func(c *nlmsg.Conn) error) error {
	if s == nil {
		s = &addrSocket{}
		defer s.close()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.open(); err != nil {
		return err
	}
	return f(s.c)
}

// open opens the socket if it is not open; s.mu must be held.
func (s *addrSocket) open() error {
	if s.c != nil {
		return nil
	}
	c, err := nlmsg.Open(unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	s.c = c
	return nil
}

func (s *addrSocket) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c != nil {
		s.c.Close()
		s.c = nil
	}
}

// parseAddrMsg reads an RTM_NEWADDR message: struct ifaddrmsg, then attributes. The address is
// IFA_LOCAL when present (IPv4; IFA_ADDRESS is then the peer of a point-to-point link), else
// IFA_ADDRESS (IPv6 sends only that), as `ip addr` and netlink.AddrList read it. ok is false
// for families other than IPv4 and IPv6.
func parseAddrMsg(b []byte) (index int, a netip.Addr, ok bool, err error) {
	if len(b) < unix.SizeofIfAddrmsg {
		return 0, netip.Addr{}, false, fmt.Errorf("%w: short ifaddrmsg", nlmsg.ErrMalformed)
	}
	family := b[0]
	idx, _ := nlmsg.U32(b[4:8])
	var address, local []byte
	if err := nlmsg.Attrs(b[unix.SizeofIfAddrmsg:], func(typ uint16, v []byte) error {
		switch typ {
		case unix.IFA_ADDRESS:
			address = v
		case unix.IFA_LOCAL:
			local = v
		}
		return nil
	}); err != nil {
		return 0, netip.Addr{}, false, err
	}
	v := address
	if local != nil {
		v = local
	}
	switch {
	case family == unix.AF_INET && len(v) == 4:
		return int(idx), netip.AddrFrom4([4]byte(v)), true, nil
	case family == unix.AF_INET6 && len(v) == 16:
		return int(idx), netip.AddrFrom16([16]byte(v)).Unmap(), true, nil
	case family == unix.AF_INET || family == unix.AF_INET6:
		return 0, netip.Addr{}, false, fmt.Errorf("%w: address of %d bytes for family %d", nlmsg.ErrMalformed, len(v), family)
	}
	return 0, netip.Addr{}, false, nil
}
