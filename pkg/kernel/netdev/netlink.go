//go:build linux

package netdev

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

// Netlink is the kernel implementation of Interface. It works in the network namespace of the
// calling thread; one made by NewNetlink must stay in one namespace (it caches link indexes).
type Netlink struct {
	links *linkIndexes
	sock  *routeSocket
	addrs *addrSocket
}

var _ Interface = Netlink{}

// NewNetlink returns the rtnetlink implementation.
func NewNetlink() Netlink {
	return Netlink{links: &linkIndexes{}, sock: &routeSocket{}, addrs: &addrSocket{}}
}

// dumpRetries bounds retries of a dump the kernel flagged as interrupted (the set of links or
// addresses changed while it was read, so the result may be inconsistent).
const dumpRetries = 5

func retryDump[T any](dump func() (T, error)) (T, error) {
	var v T
	var err error
	for range dumpRetries {
		if v, err = dump(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return v, err
}

func linkByName(name string) (netlink.Link, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil, fmt.Errorf("%w: %s", ErrLinkNotFound, name)
		}
		return nil, fmt.Errorf("finding link %s: %w", name, err)
	}
	return l, nil
}

func (n Netlink) EnsureDummy(name string) (bool, error) {
	l, err := linkByName(name)
	if err == nil {
		n.links.remember(name, l.Attrs().Index)
		if l.Type() != "dummy" {
			klog.InfoS("Link exists but is not a dummy; using it as is", "link", name, "type", l.Type())
		}
		return false, nil
	}
	if !errors.Is(err, ErrLinkNotFound) {
		return false, err
	}
	// Created down, as upstream leaves kube-ipvs0: addresses bound to a down link are still local
	// (the kernel answers for them) but the link never sends anything.
	err = netlink.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: name}})
	if errors.Is(err, unix.EEXIST) {
		return false, nil // created concurrently
	}
	if err != nil {
		return false, fmt.Errorf("creating dummy link %s: %w", name, err)
	}
	return true, nil
}

func (n Netlink) DeleteLink(name string) error {
	n.links.forget(name)
	l, err := linkByName(name)
	if errors.Is(err, ErrLinkNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("deleting link %s: %w", name, err)
	}
	return nil
}

func (n Netlink) ListAddresses(link string) ([]netip.Addr, error) {
	l, err := linkByName(link)
	if err != nil {
		n.links.forget(link)
		return nil, err
	}
	idx := l.Attrs().Index
	n.links.remember(link, idx)
	addrs, err := n.addrs.dump(func(i int, _ netip.Addr) bool { return i == idx })
	if err != nil {
		return nil, fmt.Errorf("listing addresses of %s: %w", link, err)
	}
	return addrs, nil
}

// AddAddress binds one address: a batch of one on the address socket (AddAddresses), so
// that binding has one implementation.
func (n Netlink) AddAddress(link string, addr netip.Addr) error {
	var refusal error
	if err := n.AddAddresses(link, []netip.Addr{addr}, func(_ int, err error) { refusal = err }); err != nil {
		return err
	}
	return refusal
}

func (n Netlink) DeleteAddress(link string, addr netip.Addr) error {
	if err := validAddr(addr); err != nil {
		return err
	}
	err := n.links.withLink(link, func(l netlink.Link) error {
		h := n.sock.handle()
		err := h.AddrDel(l, &netlink.Addr{IPNet: hostNet(addr)})
		if errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENXIO) || errors.Is(err, unix.ENOENT) {
			// Not bound as a host address; someone may have bound it with another prefix,
			// which ListAddresses reports too, so delete that rather than leave it forever.
			return deleteOtherPrefix(h, l, addr)
		}
		return err
	})
	if errors.Is(err, ErrLinkNotFound) {
		return err
	}
	if err != nil {
		return fmt.Errorf("deleting %s from %s: %w", addr, link, err)
	}
	return nil
}

func deleteOtherPrefix(h *netlink.Handle, l netlink.Link, addr netip.Addr) error {
	addrs, err := retryDump(func() ([]netlink.Addr, error) { return netlink.AddrList(l, netlink.FAMILY_ALL) })
	if err != nil {
		return fmt.Errorf("listing addresses of %s: %w", l.Attrs().Name, err)
	}
	for _, a := range addrs {
		if ip, ok := toAddr(a.IP); ok && ip == addr {
			if err := h.AddrDel(l, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
				return fmt.Errorf("deleting %s from %s: %w", a.IPNet, l.Attrs().Name, err)
			}
		}
	}
	return nil
}

// LocalAddresses dumps every address of the namespace in one request and drops those of the
// excluded link by index: an address bound to both kube-ipvs0 and a real link must stay (upstream
// issue 114815). A missing excluded link excludes nothing.
func (n Netlink) LocalAddresses(exclude string) ([]netip.Addr, error) {
	skip := -1
	if exclude != "" {
		l, err := linkByName(exclude)
		switch {
		case err == nil:
			skip = l.Attrs().Index
		case !errors.Is(err, ErrLinkNotFound):
			return nil, err
		}
	}
	addrs, err := n.addrs.dump(func(i int, a netip.Addr) bool { return i != skip && isLocalServing(a) })
	if err != nil {
		return nil, fmt.Errorf("listing node addresses: %w", err)
	}
	return sortedUnique(addrs), nil
}

func (Netlink) VXLANPorts() ([]uint16, error) {
	links, err := retryDump(netlink.LinkList)
	if err != nil {
		return nil, fmt.Errorf("listing links: %w", err)
	}
	var ports []uint16
	for _, l := range links {
		if v, ok := l.(*netlink.Vxlan); ok {
			p := uint16(v.Port)
			if p == 0 {
				p = DefaultVXLANPort
			}
			ports = append(ports, p)
		}
	}
	slices.Sort(ports)
	return slices.Compact(ports), nil
}

func hostNet(a netip.Addr) *net.IPNet {
	return netlink.NewIPNet(net.IP(a.Unmap().AsSlice()))
}

func toAddr(ip net.IP) (netip.Addr, bool) {
	a, ok := netip.AddrFromSlice(ip)
	return a.Unmap(), ok
}
