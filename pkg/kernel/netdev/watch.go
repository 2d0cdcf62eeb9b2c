//go:build linux

package netdev

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

// WatchAddresses subscribes to RTM_NEWADDR and RTM_DELADDR of both families through
// vishvananda/netlink, in the calling thread's network namespace: the subscription is renewed
// there, and links are looked up there, whichever thread the watch later runs on.
//
// The excluded link is recognized by its index, learned by name: at the start, and again when
// an address changes on a link whose index is not the excluded one's (one link lookup), so a
// kube-ipvs0 deleted and created again (with a new index) is learned at its first binding and
// its thousands of bindings cost one lookup. Indexes are not reused soon: the kernel hands them
// out cyclically.
func (n Netlink) WatchAddresses(ctx context.Context, exclude string, changed func()) error {
	_, err := n.watchAddresses(ctx, exclude, changed)
	return err
}

func (Netlink) watchAddresses(ctx context.Context, exclude string, changed func()) (*addrWatch, error) {
	ns, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("watching addresses: %w", err)
	}
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err == nil {
		err = h.SetSocketTimeout(writeTimeout)
	}
	if err != nil {
		ns.Close()
		if h != nil {
			h.Close()
		}
		return nil, fmt.Errorf("watching addresses: %w", err)
	}
	w := &addrWatch{
		exclude: exclude,
		changed: changed,
		linkName: func(index int) (string, error) {
			l, err := h.LinkByIndex(index)
			if err != nil {
				return "", err
			}
			return l.Attrs().Name, nil
		},
		subscribe: func(ch chan<- netlink.AddrUpdate, done <-chan struct{}, onErr func(error)) error {
			return netlink.AddrSubscribeWithOptions(ch, done, netlink.AddrSubscribeOptions{Namespace: &ns, ErrorCallback: onErr})
		},
		retryMin: 100 * time.Millisecond,
		retryMax: 30 * time.Second,
	}
	if exclude != "" {
		if l, err := h.LinkByName(exclude); err == nil {
			w.excluded = l.Attrs().Index
		}
	}
	if err := w.start(ctx); err != nil {
		h.Close()
		ns.Close()
		return nil, fmt.Errorf("subscribing to address changes: %w", err)
	}
	go func() {
		<-w.ended
		h.Close()
		ns.Close()
	}()
	return w, nil
}

// addrWatch filters and coalesces address updates and keeps a subscription open.
type addrWatch struct {
	exclude  string
	excluded int // the excluded link's index; 0 (no link's) until known
	changed  func()
	linkName func(index int) (string, error)
	// subscribe starts a subscription sending to ch until done is closed; it closes ch when the
	// socket fails, after calling onErr. netlink.AddrSubscribeWithOptions in the kernel adapter.
	subscribe func(ch chan<- netlink.AddrUpdate, done <-chan struct{}, onErr func(error)) error
	// The delay before subscribing again after a failed attempt, doubling up to retryMax.
	retryMin, retryMax time.Duration

	subscriptions atomic.Int32  // subscriptions made, for the log and the tests
	ended         chan struct{} // closed when the watch has ended (ctx done)
}

// subscription is one socket's updates.
type subscription struct {
	updates chan netlink.AddrUpdate
	done    chan struct{}
	// unreadable is signalled when an update could not be read (a message that failed to
	// parse, or the socket's failure just before updates is closed).
	unreadable chan struct{}
}

// updateQueue holds the updates of a burst while changed runs; the kernel's socket buffer holds
// more, and an overrun renews the subscription.
const updateQueue = 256

// start subscribes, then runs the watch until ctx is done.
func (w *addrWatch) start(ctx context.Context) error {
	s, err := w.open(ctx)
	if err != nil {
		return err
	}
	w.ended = make(chan struct{})
	go w.run(ctx, s)
	return nil
}

func (w *addrWatch) open(ctx context.Context) (*subscription, error) {
	s := &subscription{
		updates:    make(chan netlink.AddrUpdate, updateQueue),
		done:       make(chan struct{}),
		unreadable: make(chan struct{}, 1),
	}
	n := w.subscriptions.Load() + 1
	err := w.subscribe(s.updates, s.done, func(err error) {
		if ctx.Err() != nil {
			return // the socket was closed because the watch ended
		}
		klog.V(2).InfoS("Reading address changes failed", "err", err, "subscription", n)
		select {
		case s.unreadable <- struct{}{}:
		default:
		}
	})
	if err != nil {
		close(s.done) // a subscription that failed halfway may wait for it
		return nil, err
	}
	w.subscriptions.Store(n)
	return s, nil
}

// stop closes the subscription's socket and reads what its reader still sends, so that it
// ends instead of blocking on a full queue.
func (s *subscription) stop() {
	close(s.done)
	go func() {
		for range s.updates {
		}
	}()
}

func (w *addrWatch) run(ctx context.Context, s *subscription) {
	defer close(w.ended)
	for {
		select {
		case <-ctx.Done():
			s.stop()
			return
		case <-s.unreadable:
			w.changed()
		case u, ok := <-s.updates:
			if !ok {
				// The socket failed (an overrun on a burst of changes: ENOBUFS): updates were lost.
				s.stop()
				if s = w.reopen(ctx); s == nil {
					return
				}
				klog.InfoS("Address change subscription renewed after a failure", "subscription", w.subscriptions.Load())
				w.changed()
				continue
			}
			relevant := w.relevant(u)
			for n := len(s.updates); n > 0; n-- {
				if u := <-s.updates; !relevant {
					relevant = w.relevant(u)
				}
			}
			if relevant {
				w.changed()
			}
		}
	}
}

// reopen subscribes again, retrying with a growing delay until it succeeds or ctx is done (nil).
func (w *addrWatch) reopen(ctx context.Context) *subscription {
	delay := w.retryMin
	for {
		s, err := w.open(ctx)
		if err == nil {
			return s
		}
		klog.ErrorS(err, "Subscribing to address changes failed; retrying", "after", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		delay = min(2*delay, w.retryMax)
	}
}

// relevant reports whether an update may change what LocalAddresses(exclude) returns: an
// address it reports (not loopback, not IPv6 link-local: the host side of every pod's veth gets
// one) on a link other than the excluded one. A link that cannot be looked up (deleted since)
// is not the excluded one as far as is known.
func (w *addrWatch) relevant(u netlink.AddrUpdate) bool {
	a, ok := netip.AddrFromSlice(u.LinkAddress.IP)
	if !ok {
		return true // cannot tell: let the caller read
	}
	if !isLocalServing(a.Unmap()) {
		return false
	}
	if w.exclude == "" {
		return true
	}
	if u.LinkIndex == w.excluded {
		return false
	}
	if name, err := w.linkName(u.LinkIndex); err == nil && name == w.exclude {
		w.excluded = u.LinkIndex
		return false
	}
	return true
}
