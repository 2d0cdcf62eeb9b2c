package framework

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// NS is a named network namespace (/run/netns/NAME, so `ip netns exec NAME` and `ipvsadm` work for
// debugging) with a netlink handle bound to it. Everything here works from the test binary itself:
// no `ip netns exec` per step (every exec is expensive under emulation).
type NS struct {
	Name   string
	Handle netns.NsHandle
	NL     *netlink.Handle
}

// Path is the bind-mount path of the namespace.
func (ns *NS) Path() string { return filepath.Join("/run/netns", ns.Name) }

// NewNS creates the named namespace (removing a stale one of the same name) and brings lo up.
func NewNS(name string) (*NS, error) {
	_ = netns.DeleteNamed(name)
	var h netns.NsHandle
	err := onLockedThread(func() error {
		orig, err := netns.Get()
		if err != nil {
			return err
		}
		defer orig.Close()
		h, err = netns.NewNamed(name) // switches this thread into it
		if err != nil {
			return err
		}
		return netns.Set(orig)
	})
	if err != nil {
		return nil, fmt.Errorf("netns %s: %w", name, err)
	}
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("netlink handle in %s: %w", name, err)
	}
	ns := &NS{Name: name, Handle: h, NL: nl}
	lo, err := nl.LinkByName("lo")
	if err == nil {
		err = nl.LinkSetUp(lo)
	}
	if err != nil {
		ns.Delete()
		return nil, fmt.Errorf("lo up in %s: %w", name, err)
	}
	return ns, nil
}

// RootNS returns the namespace the test binary started in (the guest's root network namespace).
func RootNS() (*NS, error) {
	h, err := netns.GetFromPid(os.Getpid())
	if err != nil {
		return nil, err
	}
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		return nil, err
	}
	return &NS{Name: "", Handle: h, NL: nl}, nil
}

// Delete removes the namespace name; it disappears with its links once no process holds it.
func (ns *NS) Delete() {
	if ns.NL != nil {
		ns.NL.Close()
	}
	ns.Handle.Close()
	if ns.Name != "" {
		_ = netns.DeleteNamed(ns.Name)
	}
}

// onLockedThread runs fn on a locked OS thread; if fn leaves the thread in another namespace
// (restoring failed) the thread is not unlocked, so the Go runtime discards it.
func onLockedThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		err = fn()
		if cur, e := netns.Get(); e == nil {
			if cur.Equal(orig) {
				runtime.UnlockOSThread()
			}
			cur.Close()
		}
		errc <- err
	}()
	return <-errc
}

// Do runs fn with the calling goroutine's OS thread inside ns. Sockets created by fn stay in ns.
func (ns *NS) Do(fn func() error) error {
	return onLockedThread(func() error {
		orig, err := netns.Get()
		if err != nil {
			return err
		}
		defer orig.Close()
		if err := netns.Set(ns.Handle); err != nil {
			return fmt.Errorf("setns %s: %w", ns.Name, err)
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			return fmt.Errorf("restoring netns: %w", err)
		}
		return ferr
	})
}

// Sysctl writes /proc/sys/KEY (dots or slashes) inside ns.
func (ns *NS) Sysctl(key, value string) error {
	p := filepath.Join("/proc/sys", filepath.FromSlash(replaceDots(key)))
	return ns.Do(func() error { return os.WriteFile(p, []byte(value), 0o644) })
}

func replaceDots(k string) string {
	b := []byte(k)
	for i := range b {
		if b[i] == '.' {
			b[i] = '/'
		}
	}
	return string(b)
}

// Start starts cmd with ns as its network namespace: the fork happens on a thread inside ns
// (cheaper than `ip netns exec` under emulation). The process gets SIGKILL if the test dies.
func (ns *NS) Start(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	return ns.Do(func() error {
		// Pdeathsig follows the creating thread: this one stays alive (it returns to the pool).
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
		return cmd.Start()
	})
}

// Run runs a short command inside ns and returns its combined output.
func (ns *NS) Run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out []byte
	err := ns.Do(func() error {
		var err error
		out, err = cmd.CombinedOutput()
		return err
	})
	if err != nil {
		return string(out), fmt.Errorf("%s %v in %s: %w: %s", name, args, ns.Name, err, out)
	}
	return string(out), nil
}

// Dial opens a connection from inside ns ("tcp" or "udp").
func (ns *NS) Dial(network, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := ns.Do(func() error {
		var err error
		c, err = net.DialTimeout(network, addr, timeout)
		return err
	})
	return c, err
}
