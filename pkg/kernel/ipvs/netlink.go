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

	"k8s.io/klog/v2"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/nlmsg"
)

// ErrNotAvailable is returned by NewNetlink when the kernel has no IPVS.
var ErrNotAvailable = errors.New("ip_vs is not available")

const procIPVS = "/proc/net/ip_vs"

// Netlink is the kernel implementation of Interface, bound to the network namespace of the
// thread that called NewNetlink. Every request goes through its own generic netlink socket
// (genl.go).
type Netlink struct {
	// mu serializes requests: the socket is used by one request at a time.
	mu sync.Mutex
	c  *genlConn
}

var _ Interface = &Netlink{}

// NewNetlink loads ip_vs if needed and opens a socket. It fails with ErrNotAvailable when the
// kernel has no IPVS, which shows as a missing generic netlink family.
func NewNetlink() (*Netlink, error) {
	if _, err := os.Stat(procIPVS); err != nil {
		out, err := exec.Command("modprobe", "ip_vs").CombinedOutput()
		if err != nil {
			klog.V(2).InfoS("modprobe ip_vs failed", "err", err, "output", strings.TrimSpace(string(out)))
		}
	}
	fam, err := genlFamily(ipvsFamilyName)
	if err != nil {
		return nil, fmt.Errorf("%w: generic netlink family %s: %v", ErrNotAvailable, ipvsFamilyName, err)
	}
	c, err := newGenlConn(fam)
	if err != nil {
		return nil, err
	}
	n := &Netlink{c: c}
	// A round trip proves requests reach IPVS in this namespace.
	if _, err := n.getTimeouts(); err != nil {
		c.close()
		return nil, fmt.Errorf("%w: reading config: %v", ErrNotAvailable, err)
	}
	return n, nil
}

// Close releases the netlink socket.
func (n *Netlink) Close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.c.close()
}

// dumpAttempts: a dump the kernel flags as interrupted (the table changed under it, e.g. by
// another writer) is read again, at most this many times in all.
const dumpAttempts = 3

func (n *Netlink) ListVirtualServers() ([]VirtualServer, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []VirtualServer
	err := nlmsg.RetryInterrupted(dumpAttempts, func() error {
		out = out[:0]
		n.c.begin(cmdGetService)
		return n.c.do(true, func(msg []byte) error {
			vs, ok, err := parseService(msg)
			if err != nil {
				return fmt.Errorf("reading IPVS service: %w", err)
			}
			if !ok {
				klog.V(4).InfoS("Ignoring IPVS service not managed by this adapter")
				return nil
			}
			out = append(out, vs)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("listing IPVS services: %w", err)
	}
	return out, nil
}

// ListRealServers returns no error for a missing virtual server: the kernel answers that dump
// with nothing.
func (n *Netlink) ListRealServers(vs Key) ([]RealServerStatus, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := validKey(vs); err != nil {
		return nil, err
	}
	var out []RealServerStatus
	err := nlmsg.RetryInterrupted(dumpAttempts, func() error {
		out = out[:0]
		_ = putService(n.c.begin(cmdGetDest), VirtualServer{Key: vs}, false) // vs is valid
		return n.c.do(true, func(msg []byte) error {
			rs, err := parseDest(msg, vs)
			if err != nil {
				return fmt.Errorf("reading real server: %w", err)
			}
			out = append(out, rs)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("listing real servers of %s: %w", vs, err)
	}
	return out, nil
}

func (n *Netlink) AddVirtualServer(vs VirtualServer) error {
	return n.service(cmdNewService, vs, true, "adding")
}

func (n *Netlink) UpdateVirtualServer(vs VirtualServer) error {
	return n.service(cmdSetService, vs, true, "updating")
}

func (n *Netlink) DeleteVirtualServer(vs Key) error {
	return n.service(cmdDelService, VirtualServer{Key: vs}, false, "deleting")
}

func (n *Netlink) service(cmd uint8, vs VirtualServer, full bool, verb string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := putService(n.c.begin(cmd), vs, full); err != nil {
		return err
	}
	if err := n.c.do(false, nil); err != nil {
		return fmt.Errorf("%s virtual server %s: %w", verb, vs.Key, err)
	}
	return nil
}

func (n *Netlink) AddRealServer(vs Key, rs RealServer) error {
	return n.destination(cmdNewDest, vs, rs, true, "adding")
}

// Add sends the additions in batches of nlmsg.MaxBatch requests per round trip (see
// nlmsg.Conn.DoBatch): the kernel handles a datagram's requests in order, so a virtual server
// added early in a batch takes the real servers that follow it.
func (n *Netlink) Add(adds []Addition, refused func(i int, err error)) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for base := 0; base < len(adds); base += nlmsg.MaxBatch {
		chunk := adds[base:min(base+nlmsg.MaxBatch, len(adds))]
		n.c.c.BeginBatch()
		for _, a := range chunk {
			if err := putAddition(n.c, a); err != nil {
				return err
			}
		}
		err := n.c.c.DoBatch(n.c.family, 0, func(i int, err error) {
			if refused != nil {
				refused(base+i, err)
			}
		})
		if err != nil {
			return fmt.Errorf("adding %s and %d more: %w", chunk[0], len(chunk)-1, err)
		}
	}
	return nil
}

// putAddition appends the request that creates a to the batch being built.
func putAddition(c *genlConn, a Addition) error {
	if !a.IsRealServer {
		return putService(c.next(cmdNewService), a.VirtualServer, true)
	}
	w := c.next(cmdNewDest)
	if err := putService(w, VirtualServer{Key: a.VirtualServer.Key}, false); err != nil {
		return err
	}
	return putDest(w, a.VirtualServer.Key, a.RealServer, true)
}

func (n *Netlink) UpdateRealServer(vs Key, rs RealServer) error {
	return n.destination(cmdSetDest, vs, rs, true, "updating")
}

func (n *Netlink) DeleteRealServer(vs Key, rs RealServer) error {
	return n.destination(cmdDelDest, vs, rs, false, "deleting")
}

func (n *Netlink) destination(cmd uint8, vs Key, rs RealServer, full bool, verb string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	w := n.c.begin(cmd)
	if err := putService(w, VirtualServer{Key: vs}, false); err != nil {
		return err
	}
	if err := putDest(w, vs, rs, full); err != nil {
		return err
	}
	if err := n.c.do(false, nil); err != nil {
		return fmt.Errorf("%s real server %s of %s: %w", verb, rs, vs, err)
	}
	return nil
}

func (n *Netlink) Flush() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.c.begin(cmdFlush)
	if err := n.c.do(false, nil); err != nil {
		return fmt.Errorf("flushing IPVS: %w", err)
	}
	return nil
}

// SetTimeouts reads the current timeouts first and writes them back for the zero arguments, so
// the result does not depend on how a given kernel treats a zero in the request.
func (n *Netlink) SetTimeouts(tcp, tcpFin, udp time.Duration) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	cur, err := n.getTimeouts()
	if err != nil {
		return fmt.Errorf("reading IPVS timeouts: %w", err)
	}
	putTimeouts(n.c.begin(cmdSetConfig), mergeTimeouts(cur, tcp, tcpFin, udp))
	if err := n.c.do(false, nil); err != nil {
		return fmt.Errorf("setting IPVS timeouts: %w", err)
	}
	return nil
}

// Timeouts returns the kernel's IPVS tcp, tcpfin and udp timeouts.
func (n *Netlink) Timeouts() (tcp, tcpFin, udp time.Duration, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	t, err := n.getTimeouts()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("reading IPVS timeouts: %w", err)
	}
	return t.tcp, t.tcpFin, t.udp, nil
}
