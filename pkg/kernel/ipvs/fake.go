package ipvs

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/fakecalls"
)

// Fake is an in-memory Interface that answers as the kernel does, with the same errno values
// (test them with errors.Is):
//   - AddVirtualServer of an existing key: EEXIST; an unknown scheduler: ENOENT.
//   - Update/DeleteVirtualServer and AddRealServer on a missing virtual server: ESRCH.
//   - AddRealServer (and each real server of Add) of an existing real server: EEXIST;
//     Update/DeleteRealServer of a missing one: ENOENT; a negative weight: ERANGE.
//   - ListRealServers of a missing virtual server: empty, no error (the kernel's dump is empty).
//   - DeleteVirtualServer deletes its real servers.
//
// Lists are sorted (the kernel returns hash order; callers must not depend on it). Reads are the
// List methods; every other method of Interface is a write. The embedded Recorder counts calls
// and injects errors; an injected error is returned before any validation and changes nothing.
type Fake struct {
	*fakecalls.Recorder

	mu       sync.Mutex
	services map[Key]*fakeService
	tcp      time.Duration
	tcpFin   time.Duration
	udp      time.Duration
}

type fakeService struct {
	vs    VirtualServer
	dests map[netip.AddrPort]*RealServerStatus
}

var _ Interface = &Fake{}

// Kernel default timeouts of a fresh network namespace.
const (
	defaultTCPTimeout    = 900 * time.Second
	defaultTCPFinTimeout = 120 * time.Second
	defaultUDPTimeout    = 300 * time.Second
)

// schedulers are the IPVS schedulers of a stock kernel ("none" is accepted by the kernel too).
var schedulers = map[string]bool{
	"rr": true, "wrr": true, "lc": true, "wlc": true, "lblc": true, "lblcr": true, "dh": true,
	"sh": true, "sed": true, "nq": true, "fo": true, "ovf": true, "mh": true, "twos": true, "none": true,
}

// NewFake returns an empty Fake with the kernel's default timeouts.
func NewFake() *Fake {
	return &Fake{
		Recorder: fakecalls.New(
			[]string{"ListVirtualServers", "ListRealServers"},
			[]string{"AddVirtualServer", "UpdateVirtualServer", "DeleteVirtualServer", "AddRealServer",
				"UpdateRealServer", "DeleteRealServer", "Flush", "SetTimeouts"},
			"Add"),
		services: map[Key]*fakeService{},
		tcp:      defaultTCPTimeout, tcpFin: defaultTCPFinTimeout, udp: defaultUDPTimeout,
	}
}

func errno(e syscall.Errno, format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), e)
}

func (f *Fake) ListVirtualServers() ([]VirtualServer, error) {
	if err := f.Call("ListVirtualServers"); err != nil {
		return nil, err
	}
	return f.VirtualServers(), nil
}

func (f *Fake) ListRealServers(vs Key) ([]RealServerStatus, error) {
	if err := f.Call("ListRealServers"); err != nil {
		return nil, err
	}
	if err := validKey(vs); err != nil {
		return nil, err
	}
	return f.RealServers(vs), nil
}

func (f *Fake) AddVirtualServer(vs VirtualServer) error {
	if err := f.Call("AddVirtualServer"); err != nil {
		return err
	}
	if err := validService(vs); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.services[vs.Key]; ok {
		return errno(syscall.EEXIST, "adding virtual server %s", vs.Key)
	}
	vs.Flags &^= FlagHashed
	f.services[vs.Key] = &fakeService{vs: vs, dests: map[netip.AddrPort]*RealServerStatus{}}
	return nil
}

func (f *Fake) UpdateVirtualServer(vs VirtualServer) error {
	if err := f.Call("UpdateVirtualServer"); err != nil {
		return err
	}
	if err := validService(vs); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.services[vs.Key]
	if !ok {
		return errno(syscall.ESRCH, "updating virtual server %s", vs.Key)
	}
	vs.Flags &^= FlagHashed
	s.vs = vs
	return nil
}

func (f *Fake) DeleteVirtualServer(vs Key) error {
	if err := f.Call("DeleteVirtualServer"); err != nil {
		return err
	}
	if err := validKey(vs); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.services[vs]; !ok {
		return errno(syscall.ESRCH, "deleting virtual server %s", vs)
	}
	delete(f.services, vs)
	return nil
}

func (f *Fake) AddRealServer(vs Key, rs RealServer) error {
	return f.destination("AddRealServer", vs, rs, func(s *fakeService, k netip.AddrPort, cur *RealServerStatus) error {
		if cur != nil {
			return errno(syscall.EEXIST, "adding real server %s of %s", rs, vs)
		}
		s.dests[k] = &RealServerStatus{RealServer: rs}
		return nil
	})
}

// Add makes each addition as AddVirtualServer or AddRealServer does (and counts it as one),
// reporting each refusal to refused. An error injected for "Add" is a failed round trip: it is
// returned and nothing is added.
func (f *Fake) Add(adds []Addition, refused func(i int, err error)) error {
	if err := f.Call("Add"); err != nil {
		return err
	}
	for i, a := range adds {
		var err error
		if a.IsRealServer {
			err = f.AddRealServer(a.VirtualServer.Key, a.RealServer)
		} else {
			err = f.AddVirtualServer(a.VirtualServer)
		}
		if err != nil && refused != nil {
			refused(i, err)
		}
	}
	return nil
}

func (f *Fake) UpdateRealServer(vs Key, rs RealServer) error {
	return f.destination("UpdateRealServer", vs, rs, func(s *fakeService, k netip.AddrPort, cur *RealServerStatus) error {
		if cur == nil {
			return errno(syscall.ENOENT, "updating real server %s of %s", rs, vs)
		}
		cur.RealServer = rs
		return nil
	})
}

func (f *Fake) DeleteRealServer(vs Key, rs RealServer) error {
	return f.destination("DeleteRealServer", vs, rs, func(s *fakeService, k netip.AddrPort, cur *RealServerStatus) error {
		if cur == nil {
			return errno(syscall.ENOENT, "deleting real server %s of %s", rs, vs)
		}
		delete(s.dests, k)
		return nil
	})
}

func (f *Fake) destination(method string, vs Key, rs RealServer, op func(*fakeService, netip.AddrPort, *RealServerStatus) error) error {
	if err := f.Call(method); err != nil {
		return err
	}
	if err := validKey(vs); err != nil {
		return err
	}
	if err := validRealServer(vs, rs); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.services[vs]
	if !ok {
		return errno(syscall.ESRCH, "%s: virtual server %s", method, vs)
	}
	if rs.Weight < 0 {
		return errno(syscall.ERANGE, "%s: weight %d of %s", method, rs.Weight, rs)
	}
	k := netip.AddrPortFrom(rs.Address, rs.Port)
	return op(s, k, s.dests[k])
}

func (f *Fake) Flush() error {
	if err := f.Call("Flush"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.services)
	return nil
}

func (f *Fake) SetTimeouts(tcp, tcpFin, udp time.Duration) error {
	if err := f.Call("SetTimeouts"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range []struct {
		dst *time.Duration
		v   time.Duration
	}{{&f.tcp, tcp}, {&f.tcpFin, tcpFin}, {&f.udp, udp}} {
		if p.v > 0 {
			*p.dst = p.v.Truncate(time.Second) // the kernel keeps seconds
		}
	}
	return nil
}

func validService(vs VirtualServer) error {
	if err := validKey(vs.Key); err != nil {
		return err
	}
	if !schedulers[vs.Scheduler] {
		return errno(syscall.ENOENT, "virtual server %s: scheduler %q not found", vs.Key, vs.Scheduler)
	}
	return nil
}

// Test helpers: they neither count nor consume injected errors.

// VirtualServers returns the virtual servers, sorted.
func (f *Fake) VirtualServers() []VirtualServer {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]VirtualServer, 0, len(f.services))
	for _, s := range f.services {
		out = append(out, s.vs)
	}
	slices.SortFunc(out, func(a, b VirtualServer) int { return compareKeys(a.Key, b.Key) })
	return out
}

// RealServers returns the real servers of vs, sorted, or nil if vs does not exist.
func (f *Fake) RealServers(vs Key) []RealServerStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.services[vs]
	if !ok {
		return nil
	}
	out := make([]RealServerStatus, 0, len(s.dests))
	for _, d := range s.dests {
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b RealServerStatus) int {
		return netip.AddrPortFrom(a.Address, a.Port).Compare(netip.AddrPortFrom(b.Address, b.Port))
	})
	return out
}

// SetConnections sets the connection counts the kernel would report for a real server, for
// graceful-termination tests.
func (f *Fake) SetConnections(vs Key, rs netip.AddrPort, active, inactive int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.services[vs]
	if !ok {
		return fmt.Errorf("no virtual server %s", vs)
	}
	d, ok := s.dests[rs]
	if !ok {
		return fmt.Errorf("no real server %s in %s", rs, vs)
	}
	d.ActiveConnections, d.InactiveConnections = active, inactive
	return nil
}

// Timeouts returns the current tcp, tcpfin and udp timeouts.
func (f *Fake) Timeouts() (tcp, tcpFin, udp time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tcp, f.tcpFin, f.udp
}

func compareKeys(a, b Key) int {
	return cmp.Or(a.Address.Compare(b.Address), cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Port, b.Port))
}
