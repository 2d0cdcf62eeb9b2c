//go:build linux

package netdev

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/nlmsg"
)

// AddAddresses sends RTM_NEWADDR requests nlmsg.MaxBatch to a datagram on the address socket.
//
// Why batches: a cold start binds an address per Service, and one round trip per address costs
// far more than the kernel's own work, which grows linearly. BenchmarkBindAddressesLab compares
// one request each (AddAddress) with batches; figures are in docs/bench-reports.
func (n Netlink) AddAddresses(link string, addrs []netip.Addr, refused func(i int, err error)) error {
	return n.changeAddresses(link, addrs, unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL, "adding",
		func(_ netip.Addr, err error) error {
			if errors.Is(err, unix.EEXIST) {
				return nil // already bound
			}
			return err
		}, refused)
}

// DeleteAddresses sends RTM_DELADDR requests in batches, as AddAddresses does (a Service
// removed unbinds its addresses; a namespace removed, many). An address the kernel does not
// hold as a host address goes the way of DeleteAddress, which also removes it when bound with
// another prefix and accepts it not bound at all.
func (n Netlink) DeleteAddresses(link string, addrs []netip.Addr, refused func(i int, err error)) error {
	return n.changeAddresses(link, addrs, unix.RTM_DELADDR, 0, "deleting",
		func(a netip.Addr, err error) error {
			if errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENXIO) || errors.Is(err, unix.ENOENT) {
				return n.DeleteAddress(link, a)
			}
			return err
		}, refused)
}

// changeAddresses sends a request of type typ for each address, in batches, to the link's
// index (looked up again when the cached one went stale). answer turns the kernel's refusal of
// an address into nil (nothing to report) or the error refused gets.
func (n Netlink) changeAddresses(link string, addrs []netip.Addr, typ, flags uint16, verb string,
	answer func(a netip.Addr, err error) error, refused func(i int, err error)) error {
	for base := 0; base < len(addrs); base += nlmsg.MaxBatch {
		chunk := addrs[base:min(base+nlmsg.MaxBatch, len(addrs))]
		var errs map[int]error
		err := n.links.withLink(link, func(l netlink.Link) error {
			var err error
			errs, err = n.addrs.batch(l.Attrs().Index, chunk, typ, flags)
			if err != nil {
				return err
			}
			for _, e := range errs {
				if errors.Is(e, unix.ENODEV) {
					return e // a stale link index: withLink looks the link up and sends again
				}
			}
			return nil
		})
		if errors.Is(err, ErrLinkNotFound) {
			return err
		}
		if err != nil {
			return fmt.Errorf("%s %d addresses of %s: %w", verb, len(chunk), link, err)
		}
		for i, e := range errs {
			if e = answer(chunk[i], e); e != nil && refused != nil {
				refused(base+i, fmt.Errorf("%s %s of %s: %w", verb, chunk[i], link, e))
			}
		}
	}
	return nil
}

// batch sends, in one round trip, a request of type typ (RTM_NEWADDR, RTM_DELADDR) for each
// address as a host address (/32, /128) of the link with index idx. It returns the refusals by
// index; an invalid address is refused without being sent.
func (s *addrSocket) batch(idx int, addrs []netip.Addr, typ, flags uint16) (map[int]error, error) {
	var refused map[int]error
	refuse := func(i int, err error) {
		if refused == nil {
			refused = map[int]error{}
		}
		refused[i] = err
	}
	var sent []int // index in addrs of each request
	err := s.use(func(c *nlmsg.Conn) error {
		c.BeginBatch()
		for i, a := range addrs {
			if err := validAddr(a); err != nil {
				refuse(i, err)
				continue
			}
			putAddrMsg(c.Next(), idx, a)
			sent = append(sent, i)
		}
		return c.DoBatch(typ, flags, func(j int, err error) { refuse(sent[j], err) })
	})
	return refused, err
}

// putAddrMsg appends an RTM_NEWADDR or RTM_DELADDR body: struct ifaddrmsg (host prefix,
// universe scope), then the address as both IFA_LOCAL and IFA_ADDRESS, as `ip addr` and
// vishvananda/netlink send it.
func putAddrMsg(w *nlmsg.Writer, idx int, a netip.Addr) {
	family, bits := byte(unix.AF_INET), byte(32)
	if a.Is6() {
		family, bits = unix.AF_INET6, 128
	}
	var hdr [unix.SizeofIfAddrmsg]byte
	hdr[0], hdr[1] = family, bits
	binary.NativeEndian.PutUint32(hdr[4:], uint32(idx))
	w.B = append(w.B, hdr[:]...)
	var b []byte
	if a.Is4() {
		b4 := a.As4()
		b = b4[:]
	} else {
		b16 := a.As16()
		b = b16[:]
	}
	w.Put(unix.IFA_LOCAL, b)
	w.Put(unix.IFA_ADDRESS, b)
}
