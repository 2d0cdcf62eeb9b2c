package sockdiag

import (
	"net/netip"
	"slices"
	"sync"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/fakecalls"
)

// Fake is an Interface whose listeners a test sets, as processes on a node would open them. It
// answers as Netlink does: sorted, each distinct listener once. The embedded Recorder counts
// Listeners calls (reads) and injects errors.
type Fake struct {
	*fakecalls.Recorder

	mu        sync.Mutex
	listeners []Listener
}

var _ Interface = &Fake{}

// NewFake returns a Fake without listeners, as a fresh network namespace.
func NewFake() *Fake {
	return &Fake{Recorder: fakecalls.New([]string{"Listeners"}, nil)}
}

func (f *Fake) Listeners() ([]Listener, error) {
	if err := f.Call("Listeners"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return sortedUnique(slices.Clone(f.listeners)), nil
}

// SetListeners replaces the listeners, normalized as Netlink reports them: an IPv4-mapped
// address is the IPv4 address, and only a socket on :: can be DualStack.
func (f *Fake) SetListeners(ls ...Listener) {
	ls = slices.Clone(ls)
	for i := range ls {
		ls[i].Address = ls[i].Address.Unmap()
		ls[i].DualStack = ls[i].DualStack && ls[i].Address == netip.IPv6Unspecified()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listeners = ls
}

// Listen adds a listener, e.g. Listen(TCP, "0.0.0.0", 10250) for kubelet; "::" is an IPv6-only
// socket (ListenDualStack for one that also receives IPv4).
func (f *Fake) Listen(proto Protocol, addr string, port uint16) {
	f.add(Listener{Protocol: proto, Address: netip.MustParseAddr(addr).Unmap(), Port: port})
}

// ListenDualStack adds an IPv6 socket on :: without IPV6_V6ONLY.
func (f *Fake) ListenDualStack(proto Protocol, port uint16) {
	f.add(Listener{Protocol: proto, Address: netip.IPv6Unspecified(), Port: port, DualStack: true})
}

func (f *Fake) add(l Listener) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listeners = append(f.listeners, l)
}
