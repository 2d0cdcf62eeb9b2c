//go:build linux

package sockdiag

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/nlmsg"
)

// Netlink reads the listeners of the calling thread's network namespace over a NETLINK_SOCK_DIAG
// socket opened for each call (the proxier asks rarely: a socket kept open would save three
// system calls a read).
//
// Not vishvananda/netlink's SocketDiagTCP and SocketDiagUDP: they ask for every state (0xfff),
// so a node with 100,000 established connections would have the kernel walk and send them all
// to find its few dozen listeners, and a message they cannot parse ends the dump without an
// error. nlmsg's socket sends the state bitmask and parses each answer in place.
type Netlink struct{}

var _ Interface = Netlink{}

// dumpAttempts bounds the reads of a dump the kernel flags as interrupted.
const dumpAttempts = 3

// Listeners dumps TCP and UDP sockets of both families, and SCTP sockets when the sctp module is
// loaded, each in the listening state only. It returns each distinct listener once (the sockets
// of a SO_REUSEPORT group are one), sorted.
func (Netlink) Listeners() ([]Listener, error) {
	c, err := nlmsg.Open(unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var out []Listener
	protos := []Protocol{TCP, UDP}
	if sctpLoaded() {
		protos = append(protos, SCTP)
	}
	for _, proto := range protos {
		for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
			out, err = dump(c, out, family, proto)
			if proto == SCTP && errors.Is(err, unix.ENOENT) {
				// sctp without sctp_diag (CONFIG_INET_SCTP_DIAG off): its listeners cannot be
				// seen. TCP and UDP are still worth returning.
				klog.V(2).InfoS("The kernel cannot list SCTP sockets; SCTP listeners left out", "err", err)
				break
			}
			if err != nil {
				return nil, fmt.Errorf("listing %s sockets of family %d: %w", proto, family, err)
			}
		}
	}
	return sortedUnique(out), nil
}

// dump appends the listeners of one family and protocol to out.
func dump(c *nlmsg.Conn, out []Listener, family uint8, proto Protocol) ([]Listener, error) {
	start := len(out)
	err := nlmsg.RetryInterrupted(dumpAttempts, func() error {
		out = out[:start]
		putRequest(c.Begin(), family, proto)
		return c.Do(unix.SOCK_DIAG_BY_FAMILY, true, func(typ uint16, body []byte) error {
			if typ != unix.SOCK_DIAG_BY_FAMILY {
				return nil
			}
			var err error
			out, err = appendListeners(out, proto, body)
			return err
		})
	})
	return out, err
}

// sctpLoaded reports whether the kernel has SCTP, which then lists /proc/net/sctp in every
// network namespace: without it no SCTP socket can exist. Asking sock_diag about SCTP on a
// kernel before 5.0 would load sctp_diag, and with it sctp, just to find nothing. A /proc that
// cannot be read says nothing: the kernel is asked.
func sctpLoaded() bool {
	if _, err := os.Stat("/proc/thread-self/net"); err != nil {
		return true
	}
	_, err := os.Stat("/proc/thread-self/net/sctp")
	return err == nil
}
