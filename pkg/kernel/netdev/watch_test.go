//go:build linux

package netdev

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// fakeSubscriber stands for the kernel's address notifications: each subscription is a channel
// the test sends to, or closes as vishvananda/netlink does when its socket fails.
type fakeSubscriber struct {
	mu       sync.Mutex
	attempts int
	refuse   int // attempts to refuse before the next succeeds
	subs     []chan<- netlink.AddrUpdate
	onErrs   []func(error)
	dones    []<-chan struct{}
}

func (f *fakeSubscriber) subscribe(ch chan<- netlink.AddrUpdate, done <-chan struct{}, onErr func(error)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempts++
	if f.refuse > 0 {
		f.refuse--
		return errors.New("no socket")
	}
	f.subs = append(f.subs, ch)
	f.onErrs = append(f.onErrs, onErr)
	f.dones = append(f.dones, done)
	return nil
}

func (f *fakeSubscriber) sub(i int) (chan<- netlink.AddrUpdate, func(error), <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.subs[i], f.onErrs[i], f.dones[i]
}

func update(index int, ip string) netlink.AddrUpdate {
	return netlink.AddrUpdate{LinkIndex: index, NewAddr: true,
		LinkAddress: net.IPNet{IP: net.ParseIP(ip), Mask: net.CIDRMask(32, 32)}}
}

// TestAddrWatchRelevant: which updates may change LocalAddresses(exclude), and what each costs
// in link lookups: the excluded link is recognized by its index, learned by name, and learned
// again when it was created anew.
func TestAddrWatchRelevant(t *testing.T) {
	names := map[int]string{1: "lo", 2: "eth0", 5: "kube-ipvs0", 7: "kube-ipvs0"}
	lookups := 0
	w := &addrWatch{exclude: "kube-ipvs0", excluded: 5, linkName: func(i int) (string, error) {
		lookups++
		if n, ok := names[i]; ok {
			return n, nil
		}
		return "", errors.New("link not found")
	}}
	for _, tc := range []struct {
		name    string
		u       netlink.AddrUpdate
		want    bool
		lookups int
	}{
		{"a node address", update(2, "192.168.1.10"), true, 1},
		{"on the excluded link", update(5, "10.96.0.1"), false, 0},
		{"IPv6 link-local: never served", update(2, "fe80::1"), false, 0},
		{"loopback: never served", update(1, "127.0.0.2"), false, 0},
		{"an address on lo", update(1, "10.0.0.1"), true, 1},
		{"kube-ipvs0 created again", update(7, "10.96.0.1"), false, 1},
		{"its next binding", update(7, "10.96.0.2"), false, 0},
		{"a link already gone", update(9, "10.0.0.9"), true, 1},
		{"an address that could not be read", netlink.AddrUpdate{LinkIndex: 2}, true, 0},
	} {
		before := lookups
		if got := w.relevant(tc.u); got != tc.want || lookups-before != tc.lookups {
			t.Errorf("%s: relevant %v after %d lookups; want %v after %d", tc.name, got, lookups-before, tc.want, tc.lookups)
		}
	}
	w = &addrWatch{linkName: func(int) (string, error) { t.Fatal("a lookup without an excluded link"); return "", nil }}
	if !w.relevant(update(5, "10.96.0.1")) {
		t.Error("nothing excluded: not relevant")
	}
}

func watchForTest(t *testing.T, f *fakeSubscriber, changed func()) *addrWatch {
	return &addrWatch{exclude: "kube-ipvs0", changed: changed, subscribe: f.subscribe,
		linkName: func(i int) (string, error) { return "eth0", nil },
		retryMin: time.Millisecond, retryMax: 4 * time.Millisecond}
}

func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// TestAddrWatchCoalesces: what is queued when the watch reads an update is one call.
func TestAddrWatchCoalesces(t *testing.T) {
	f := &fakeSubscriber{}
	calls := make(chan struct{}, 100)
	w := watchForTest(t, f, func() { calls <- struct{}{} })
	ctx, cancel := context.WithCancel(context.Background())
	s, err := w.open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		s.updates <- update(2, "192.168.1."+string(rune('0'+i%10)))
	}
	w.ended = make(chan struct{})
	go w.run(ctx, s)
	wait(t, calls, "the call")
	cancel()
	wait(t, w.ended, "the end of the watch")
	if n := len(calls); n != 0 {
		t.Errorf("%d more calls for one burst", n)
	}
}

// TestAddrWatchRenews: a subscription whose socket failed is renewed, retrying while that
// fails, and changed is called (changes may have been lost); an update that could not be read
// is a call too; the end of the context closes the socket and lets its reader end.
func TestAddrWatchRenews(t *testing.T) {
	f := &fakeSubscriber{}
	calls := make(chan struct{}, 100)
	w := watchForTest(t, f, func() { calls <- struct{}{} })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := w.start(ctx); err != nil {
		t.Fatal(err)
	}
	first, onErr, firstDone := f.sub(0)
	first <- update(2, "192.168.1.10")
	wait(t, calls, "the call of an update")

	onErr(errors.New("could not parse address"))
	wait(t, calls, "the call of an unreadable update")

	f.mu.Lock()
	f.refuse = 2
	f.mu.Unlock()
	close(first) // the socket failed (vishvananda/netlink reports it to onErr first)
	wait(t, calls, "the call after the renewal")
	wait(t, firstDone, "the failed subscription's socket to be closed")
	f.mu.Lock()
	attempts := f.attempts
	f.mu.Unlock()
	if attempts != 4 || w.subscriptions.Load() != 2 {
		t.Errorf("%d attempts to subscribe, %d subscriptions; want 4 (two refused), 2", attempts, w.subscriptions.Load())
	}
	second, _, secondDone := f.sub(1)
	second <- update(2, "192.168.1.11")
	wait(t, calls, "the call of an update on the renewed subscription")

	cancel()
	wait(t, secondDone, "the socket to be closed at the end")
	wait(t, w.ended, "the end of the watch")
	for range updateQueue + 10 { // the reader is not blocked on a full queue
		second <- update(2, "192.168.1.12")
	}
	close(second)
	if n := len(calls); n != 0 {
		t.Errorf("%d calls after the end", n)
	}
}

// TestAddrWatchStartFails: a subscription refused at the start is WatchAddresses' error.
func TestAddrWatchStartFails(t *testing.T) {
	f := &fakeSubscriber{refuse: 1}
	w := watchForTest(t, f, func() { t.Error("called") })
	if err := w.start(context.Background()); err == nil {
		t.Error("started without a subscription")
	}
}
