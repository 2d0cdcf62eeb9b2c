//go:build linux

package netdev

import (
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

// routeSocket is the rtnetlink socket of DeleteAddress, which goes through vishvananda/netlink
// (it may have to list and delete an address bound with another prefix; binding and batched
// unbinding use the address socket, addrbatch.go). vishvananda/netlink's package functions
// open, configure and close a socket per request: eight system calls instead of three. The
// socket is opened at the first write, in the namespace of the thread making it (the
// Netlink's namespace).
type routeSocket struct {
	once sync.Once
	h    *netlink.Handle
}

// writeTimeout bounds a request on the shared socket, as the package functions' sockets are
// bounded: the kernel always answers, but a wedged request must not stall every sync.
const writeTimeout = time.Minute

// handle returns the shared handle; a zero Handle (a socket per request) when there is none.
func (s *routeSocket) handle() *netlink.Handle {
	if s == nil {
		return &netlink.Handle{}
	}
	s.once.Do(func() {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err == nil {
			err = h.SetSocketTimeout(writeTimeout)
		}
		if err != nil {
			klog.InfoS("Opening a shared rtnetlink socket failed; a socket per request", "err", err)
			if h != nil {
				h.Close()
			}
			return
		}
		s.h = h
	})
	if s.h == nil {
		return &netlink.Handle{}
	}
	return s.h
}
