package netdev

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/fakecalls"
)

// Fake is an in-memory Interface that answers as the kernel does. A new Fake holds what a fresh
// network namespace holds: a link "lo" with 127.0.0.1 and ::1. Address methods on a missing link
// return ErrLinkNotFound; adding a bound address or deleting an unbound one succeeds; an address
// bound to several links is reported once by LocalAddresses, which skips loopback and IPv6
// link-local addresses as the kernel implementation does.
//
// Reads are ListAddresses, LocalAddresses and VXLANPorts; the rest of Interface are writes. The
// embedded Recorder counts calls and injects errors; an injected error changes nothing.
type Fake struct {
	*fakecalls.Recorder

	mu    sync.Mutex
	links map[string]*fakeLink
}

type fakeLink struct {
	kind  string // "dummy", "vxlan", "device", "loopback"
	up    bool
	addrs []netip.Addr // in the order bound, as the kernel lists them
	port  uint16       // vxlan destination port as the kernel reports it
}

var _ Interface = &Fake{}

// NewFake returns a Fake holding only lo.
func NewFake() *Fake {
	return &Fake{
		Recorder: fakecalls.New(
			[]string{"ListAddresses", "LocalAddresses", "VXLANPorts"},
			[]string{"EnsureDummy", "DeleteLink", "AddAddress", "DeleteAddress"},
			"AddAddresses", "DeleteAddresses"),
		links: map[string]*fakeLink{"lo": {kind: "loopback", up: true,
			addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}}},
	}
}

func (f *Fake) EnsureDummy(name string) (bool, error) {
	if err := f.Call("EnsureDummy"); err != nil {
		return false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.links[name]; ok {
		return false, nil
	}
	f.links[name] = &fakeLink{kind: "dummy"}
	return true, nil
}

func (f *Fake) DeleteLink(name string) error {
	if err := f.Call("DeleteLink"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.links, name)
	return nil
}

func (f *Fake) ListAddresses(link string) ([]netip.Addr, error) {
	if err := f.Call("ListAddresses"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.link(link)
	if err != nil {
		return nil, err
	}
	return slices.Clone(l.addrs), nil
}

func (f *Fake) AddAddress(link string, addr netip.Addr) error {
	return f.changeAddress("AddAddress", link, addr, func(l *fakeLink, i int) {
		if i < 0 {
			l.addrs = append(l.addrs, addr)
		}
	})
}

// AddAddresses binds each address as AddAddress does (and counts it as one), reporting each
// refusal to refused. An error injected for "AddAddresses" is a failed round trip: it is
// returned and nothing is bound. A missing link fails the call, as in the kernel adapter.
func (f *Fake) AddAddresses(link string, addrs []netip.Addr, refused func(i int, err error)) error {
	return f.changeAddresses("AddAddresses", link, addrs, f.AddAddress, refused)
}

// DeleteAddresses unbinds each address as DeleteAddress does, as AddAddresses binds them.
func (f *Fake) DeleteAddresses(link string, addrs []netip.Addr, refused func(i int, err error)) error {
	return f.changeAddresses("DeleteAddresses", link, addrs, f.DeleteAddress, refused)
}

func (f *Fake) changeAddresses(method, link string, addrs []netip.Addr, each func(string, netip.Addr) error, refused func(i int, err error)) error {
	if err := f.Call(method); err != nil {
		return err
	}
	f.mu.Lock()
	_, err := f.link(link)
	f.mu.Unlock()
	if err != nil {
		return err
	}
	for i, a := range addrs {
		if err := each(link, a); err != nil && refused != nil {
			refused(i, err)
		}
	}
	return nil
}

func (f *Fake) DeleteAddress(link string, addr netip.Addr) error {
	return f.changeAddress("DeleteAddress", link, addr, func(l *fakeLink, i int) {
		if i >= 0 {
			l.addrs = slices.Delete(l.addrs, i, i+1)
		}
	})
}

func (f *Fake) changeAddress(method, link string, addr netip.Addr, change func(l *fakeLink, i int)) error {
	if err := f.Call(method); err != nil {
		return err
	}
	if err := validAddr(addr); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.link(link)
	if err != nil {
		return err
	}
	change(l, slices.Index(l.addrs, addr))
	return nil
}

func (f *Fake) LocalAddresses(exclude string) ([]netip.Addr, error) {
	if err := f.Call("LocalAddresses"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []netip.Addr
	for name, l := range f.links {
		if name == exclude {
			continue
		}
		for _, a := range l.addrs {
			if isLocalServing(a) {
				out = append(out, a)
			}
		}
	}
	return sortedUnique(out), nil
}

func (f *Fake) VXLANPorts() ([]uint16, error) {
	if err := f.Call("VXLANPorts"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var ports []uint16
	for _, l := range f.links {
		if l.kind == "vxlan" {
			ports = append(ports, l.port)
		}
	}
	slices.Sort(ports)
	return slices.Compact(ports), nil
}

func (f *Fake) link(name string) (*fakeLink, error) {
	l, ok := f.links[name]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrLinkNotFound, name)
	}
	return l, nil
}

// Test helpers: they neither count nor consume injected errors.

// AddLink adds (or replaces) an up, physical-like link with the given addresses, e.g. eth0 with
// the node's addresses.
func (f *Fake) AddLink(name string, addrs ...netip.Addr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.links[name] = &fakeLink{kind: "device", up: true, addrs: slices.Clone(addrs)}
}

// AddVXLAN adds (or replaces) a VXLAN link. A port of 0 stands for a link created without a
// destination port: the kernel then reports DefaultVXLANPort.
func (f *Fake) AddVXLAN(name string, port uint16) {
	if port == 0 {
		port = DefaultVXLANPort
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.links[name] = &fakeLink{kind: "vxlan", up: true, port: port}
}

// SetAddresses replaces the addresses of an existing link, e.g. to change the node's local
// addresses between two syncs.
func (f *Fake) SetAddresses(name string, addrs ...netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.link(name)
	if err != nil {
		return err
	}
	l.addrs = slices.Clone(addrs)
	return nil
}

// Addresses returns the addresses of a link, nil if it is missing.
func (f *Fake) Addresses(name string) []netip.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l, ok := f.links[name]; ok {
		return slices.Clone(l.addrs)
	}
	return nil
}

// Links returns the names of the links, sorted.
func (f *Fake) Links() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	names := make([]string, 0, len(f.links))
	for n := range f.links {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// LinkKind returns "dummy", "vxlan", "device" or "loopback", and whether the link is up.
func (f *Fake) LinkKind(name string) (kind string, up bool, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.links[name]
	if !ok {
		return "", false, false
	}
	return l.kind, l.up, true
}
