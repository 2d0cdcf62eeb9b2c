//go:build linux

// Package nstest runs a test inside a fresh network namespace, so real-kernel tests neither see
// nor disturb the host's links, addresses, IPVS services or ipsets.
package nstest

import (
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Enter locks the calling goroutine to its OS thread, moves the thread into a new network
// namespace with lo up, and restores the original namespace when the test ends. Everything the
// test does on this goroutine (netlink sockets, exec'd processes) happens in the new namespace.
// It skips the test when not running as root.
func Enter(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("getting current netns: %v", err)
	}
	ns, err := netns.New() // also switches the thread into it
	if err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		t.Fatalf("creating netns: %v", err)
	}
	t.Cleanup(func() {
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: the runtime then discards it instead of reusing a thread
			// stuck in the test namespace.
			t.Errorf("restoring netns: %v", err)
			return
		}
		ns.Close()
		orig.Close()
		runtime.UnlockOSThread()
	})
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatalf("finding lo: %v", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		t.Fatalf("setting lo up: %v", err)
	}
}
