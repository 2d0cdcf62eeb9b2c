//go:build linux

package sockdiag

import (
	"encoding/binary"
	"fmt"
	"net"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/nlmsg"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/nstest"
)

// enter moves the sub-benchmark's goroutine, which is not the one nstest.Enter locked, into ns.
func enter(b *testing.B, ns netns.NsHandle) {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		b.Fatal(err)
	}
	if err := netns.Set(ns); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := netns.Set(orig); err != nil {
			b.Errorf("restoring netns: %v", err) // the thread stays locked and is discarded
			return
		}
		orig.Close()
		runtime.UnlockOSThread()
	})
}

// BenchmarkListeners reads the listeners of a namespace holding 20 of them and 2000
// established loopback connections (4000 established sockets), as Listeners asks (the
// listening state only) and as a dump of every state would (what vishvananda/netlink's
// SocketDiagTCP and SocketDiagUDP ask for, also measured).
func BenchmarkListeners(b *testing.B) {
	nstest.Enter(b)
	const listeners, conns = 20, 2000
	var server net.Listener
	for i := range listeners {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", 7000+i))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { l.Close() })
		if i == 0 {
			server = l
		}
	}
	accepted := make(chan net.Conn, conns)
	go func() {
		for range conns {
			c, err := server.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
		close(accepted)
	}()
	for range conns {
		c, err := net.Dial("tcp", server.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
	}
	for c := range accepted {
		b.Cleanup(func() { c.Close() })
	}

	ns, err := netns.Get()
	if err != nil {
		b.Fatal(err)
	}
	defer ns.Close()
	run := func(name string, f func(b *testing.B)) {
		b.Run(name, func(b *testing.B) {
			enter(b, ns)
			f(b)
		})
	}
	run("listening state", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ls, err := Netlink{}.Listeners()
			if err != nil || len(ls) != listeners {
				b.Fatalf("%d listeners, %v", len(ls), err)
			}
		}
	})
	run("every state", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c, err := nlmsg.Open(unix.NETLINK_SOCK_DIAG)
			if err != nil {
				b.Fatal(err)
			}
			var out []Listener
			sockets := 0
			for _, proto := range []Protocol{TCP, UDP} {
				for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
					w := c.Begin()
					putRequest(w, family, proto)
					binary.NativeEndian.PutUint32(w.B[unix.NLMSG_HDRLEN+4:], 0xfff)
					err := c.Do(unix.SOCK_DIAG_BY_FAMILY, true, func(_ uint16, body []byte) error {
						sockets++
						out, err = appendListeners(out, proto, body)
						return err
					})
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			c.Close()
			if len(out) != listeners || sockets < 2*conns {
				b.Fatalf("%d listeners in %d sockets", len(out), sockets)
			}
		}
	})
	run("vishvananda every state", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n := 0
			for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
				tcp, err := netlink.SocketDiagTCP(family)
				if err != nil {
					b.Fatal(err)
				}
				udp, err := netlink.SocketDiagUDP(family)
				if err != nil {
					b.Fatal(err)
				}
				n += len(tcp) + len(udp)
			}
			if n < 2*conns {
				b.Fatalf("%d sockets", n)
			}
		}
	})
}
