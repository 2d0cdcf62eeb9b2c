package netdev

import (
	"context"
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
// WatchAddresses watchers are called as the kernel would notify them: when an address
// LocalAddresses reports is bound to or unbound from a link other than the excluded one, through
// the Interface methods or the test helpers (AddLink, SetAddresses, AddVXLAN replacing a link,
// DeleteLink). Binding an address already bound or unbinding one not bound changes nothing and
// calls no one. SimulateAddressChange calls them as for a change made outside the Fake. Calls
// happen in the goroutine making the change, once it is visible, with no lock of the Fake held,
// and one at a time per watch.
//
// Reads are ListAddresses, LocalAddresses and VXLANPorts; the rest of Interface are writes but
// WatchAddresses, counted as neither. The embedded Recorder counts calls and injects errors; an
// injected error changes nothing.
type Fake struct {
	*fakecalls.Recorder

	mu      sync.Mutex
	links   map[string]*fakeLink
	watches []*fakeWatch
}

type fakeWatch struct {
	ctx     context.Context
	exclude string
	mu      sync.Mutex // serializes the calls of changed, as the kernel adapter does
	changed func()
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
			// Counted as neither reads nor writes: the batches, whose writes count one by one,
			// and the subscription.
			"AddAddresses", "DeleteAddresses", "WatchAddresses"),
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
	f.replaceLink(name, nil)
	return nil
}

// replaceLink replaces (nil: deletes) a link and notifies the watchers when the addresses
// LocalAddresses reports of it changed.
func (f *Fake) replaceLink(name string, l *fakeLink) {
	f.mu.Lock()
	var before []netip.Addr
	if old, ok := f.links[name]; ok {
		before = old.addrs
	}
	if l == nil {
		delete(f.links, name)
	} else {
		f.links[name] = l
	}
	var after []netip.Addr
	if l != nil {
		after = l.addrs
	}
	f.mu.Unlock()
	if servingChanged(before, after) {
		f.addressesChanged(name)
	}
}

// servingChanged reports whether two address lists of a link differ in the addresses
// LocalAddresses reports.
func servingChanged(before, after []netip.Addr) bool {
	serving := func(addrs []netip.Addr) []netip.Addr {
		var out []netip.Addr
		for _, a := range addrs {
			if isLocalServing(a) {
				out = append(out, a)
			}
		}
		return sortedUnique(out)
	}
	return !slices.Equal(serving(before), serving(after))
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
	l, err := f.link(link)
	if err != nil {
		f.mu.Unlock()
		return err
	}
	before := slices.Clone(l.addrs)
	change(l, slices.Index(l.addrs, addr))
	changed := servingChanged(before, l.addrs)
	f.mu.Unlock()
	if changed {
		f.addressesChanged(link)
	}
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

// WatchAddresses registers changed until ctx is done; see Fake for when it is called.
func (f *Fake) WatchAddresses(ctx context.Context, exclude string, changed func()) error {
	if err := f.Call("WatchAddresses"); err != nil {
		return err
	}
	w := &fakeWatch{ctx: ctx, exclude: exclude, changed: changed}
	f.mu.Lock()
	f.watches = append(f.watches, w)
	f.mu.Unlock()
	context.AfterFunc(ctx, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.watches = slices.DeleteFunc(f.watches, func(x *fakeWatch) bool { return x == w })
	})
	return nil
}

// addressesChanged calls the watches that do not exclude link; f.mu must not be held.
func (f *Fake) addressesChanged(link string) {
	f.mu.Lock()
	var calls []*fakeWatch
	for _, w := range f.watches {
		if w.exclude != link {
			calls = append(calls, w)
		}
	}
	f.mu.Unlock()
	for _, w := range calls {
		w.mu.Lock()
		if w.ctx.Err() == nil {
			w.changed()
		}
		w.mu.Unlock()
	}
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
	f.replaceLink(name, &fakeLink{kind: "device", up: true, addrs: slices.Clone(addrs)})
}

// AddVXLAN adds (or replaces) a VXLAN link. A port of 0 stands for a link created without a
// destination port: the kernel then reports DefaultVXLANPort.
func (f *Fake) AddVXLAN(name string, port uint16) {
	if port == 0 {
		port = DefaultVXLANPort
	}
	f.replaceLink(name, &fakeLink{kind: "vxlan", up: true, port: port})
}

// SetAddresses replaces the addresses of an existing link, e.g. to change the node's local
// addresses between two syncs.
func (f *Fake) SetAddresses(name string, addrs ...netip.Addr) error {
	f.mu.Lock()
	l, err := f.link(name)
	if err != nil {
		f.mu.Unlock()
		return err
	}
	before := l.addrs
	l.addrs = slices.Clone(addrs)
	f.mu.Unlock()
	if servingChanged(before, addrs) {
		f.addressesChanged(name)
	}
	return nil
}

// SimulateAddressChange calls the watches that do not exclude link, as the kernel adapter does
// for an address bound or unbound outside the Fake (DHCP, an operator), or after renewing a
// failed subscription.
func (f *Fake) SimulateAddressChange(link string) {
	f.addressesChanged(link)
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
