//go:build linux

package ipvs

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	libipvs "github.com/moby/ipvs"
	"github.com/vishvananda/netlink"
	"k8s.io/klog/v2"
)

// ErrNotAvailable is returned by NewNetlink when the kernel has no IPVS.
var ErrNotAvailable = errors.New("ip_vs is not available")

const procIPVS = "/proc/net/ip_vs"

// Netlink is the kernel implementation of Interface, bound to the network namespace of the
// thread that called NewNetlink.
type Netlink struct {
	// mu serializes requests: moby's handle shares one netlink socket and matches replies only
	// by sequence number, so concurrent dumps could read each other's messages.
	mu sync.Mutex
	h  *libipvs.Handle
}

var _ Interface = &Netlink{}

// NewNetlink loads ip_vs if needed and opens a handle. It fails with ErrNotAvailable when the
// kernel has no IPVS: moby/ipvs itself only logs that case and then silently sends every request
// to generic netlink family 0, where the kernel acknowledges it without doing anything.
func NewNetlink() (*Netlink, error) {
	if _, err := os.Stat(procIPVS); err != nil {
		out, err := exec.Command("modprobe", "ip_vs").CombinedOutput()
		if err != nil {
			klog.V(2).InfoS("modprobe ip_vs failed", "err", err, "output", strings.TrimSpace(string(out)))
		}
	}
	// The generic netlink family must exist before moby/ipvs first resolves it: it does so once
	// per process and keeps the (zero) result forever.
	if _, err := netlink.GenlFamilyGet("IPVS"); err != nil {
		return nil, fmt.Errorf("%w: generic netlink family IPVS: %v", ErrNotAvailable, err)
	}
	h, err := libipvs.New("")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotAvailable, err)
	}
	// A round-trip proves requests reach IPVS in this namespace.
	if _, err := h.GetConfig(); err != nil {
		h.Close()
		return nil, fmt.Errorf("%w: reading config: %v", ErrNotAvailable, err)
	}
	return &Netlink{h: h}, nil
}

// Close releases the netlink socket.
func (n *Netlink) Close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.h.Close()
}

func (n *Netlink) ListVirtualServers() ([]VirtualServer, error) {
	n.mu.Lock()
	svcs, err := n.h.GetServices()
	n.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("listing IPVS services: %w", err)
	}
	out := make([]VirtualServer, 0, len(svcs))
	for _, s := range svcs {
		vs, ok, err := fromService(s)
		if err != nil {
			return nil, fmt.Errorf("reading IPVS service: %w", err)
		}
		if !ok {
			klog.V(4).InfoS("Ignoring IPVS service not managed by this adapter", "fwmark", s.FWMark, "protocol", s.Protocol)
			continue
		}
		out = append(out, vs)
	}
	return out, nil
}

// ListRealServers returns no error for a missing virtual server: the kernel answers that dump
// with nothing.
func (n *Netlink) ListRealServers(vs Key) ([]RealServerStatus, error) {
	s, err := keyToService(vs)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	dsts, err := n.h.GetDestinations(s)
	n.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("listing real servers of %s: %w", vs, err)
	}
	out := make([]RealServerStatus, 0, len(dsts))
	for _, d := range dsts {
		rs, err := fromDestination(d)
		if err != nil {
			return nil, fmt.Errorf("reading real server of %s: %w", vs, err)
		}
		out = append(out, rs)
	}
	return out, nil
}

func (n *Netlink) AddVirtualServer(vs VirtualServer) error {
	return n.service(vs, "adding", (*libipvs.Handle).NewService)
}

func (n *Netlink) UpdateVirtualServer(vs VirtualServer) error {
	return n.service(vs, "updating", (*libipvs.Handle).UpdateService)
}

func (n *Netlink) DeleteVirtualServer(vs Key) error {
	return n.service(VirtualServer{Key: vs}, "deleting", (*libipvs.Handle).DelService)
}

func (n *Netlink) service(vs VirtualServer, verb string, op func(*libipvs.Handle, *libipvs.Service) error) error {
	s, err := toService(vs)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := op(n.h, s); err != nil {
		return fmt.Errorf("%s virtual server %s: %w", verb, vs.Key, err)
	}
	return nil
}

func (n *Netlink) AddRealServer(vs Key, rs RealServer) error {
	return n.destination(vs, rs, "adding", (*libipvs.Handle).NewDestination)
}

func (n *Netlink) UpdateRealServer(vs Key, rs RealServer) error {
	return n.destination(vs, rs, "updating", (*libipvs.Handle).UpdateDestination)
}

func (n *Netlink) DeleteRealServer(vs Key, rs RealServer) error {
	return n.destination(vs, rs, "deleting", (*libipvs.Handle).DelDestination)
}

func (n *Netlink) destination(vs Key, rs RealServer, verb string, op func(*libipvs.Handle, *libipvs.Service, *libipvs.Destination) error) error {
	s, err := keyToService(vs)
	if err != nil {
		return err
	}
	d, err := toDestination(vs, rs)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := op(n.h, s, d); err != nil {
		return fmt.Errorf("%s real server %s of %s: %w", verb, rs, vs, err)
	}
	return nil
}

func (n *Netlink) Flush() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.h.Flush(); err != nil {
		return fmt.Errorf("flushing IPVS: %w", err)
	}
	return nil
}

// SetTimeouts reads the current timeouts first and writes them back for the zero arguments, so
// the result does not depend on how a given kernel treats a zero in the request.
func (n *Netlink) SetTimeouts(tcp, tcpFin, udp time.Duration) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	cur, err := n.h.GetConfig()
	if err != nil {
		return fmt.Errorf("reading IPVS timeouts: %w", err)
	}
	c := mergeTimeouts(*cur, tcp, tcpFin, udp)
	if err := n.h.SetConfig(&c); err != nil {
		return fmt.Errorf("setting IPVS timeouts: %w", err)
	}
	return nil
}

// Timeouts returns the kernel's IPVS tcp, tcpfin and udp timeouts.
func (n *Netlink) Timeouts() (tcp, tcpFin, udp time.Duration, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	c, err := n.h.GetConfig()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("reading IPVS timeouts: %w", err)
	}
	return c.TimeoutTCP, c.TimeoutTCPFin, c.TimeoutUDP, nil
}

func mergeTimeouts(cur libipvs.Config, tcp, tcpFin, udp time.Duration) libipvs.Config {
	if tcp > 0 {
		cur.TimeoutTCP = tcp
	}
	if tcpFin > 0 {
		cur.TimeoutTCPFin = tcpFin
	}
	if udp > 0 {
		cur.TimeoutUDP = udp
	}
	return cur
}
