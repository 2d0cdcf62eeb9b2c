//go:build lab

package netdev

import (
	"net/netip"
	"testing"

	mdnetlink "github.com/mdlayher/netlink"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/nlmsg"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/nstest"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/stackbench"
)

// BenchmarkNetlinkStacks sends the same rtnetlink requests through this adapter's address
// socket (nlmsg) and through mdlayher/netlink, in one run on the lab kernel: a batch of 64
// address bindings on a dummy link then a batch of their 64 removals, and the dump of the
// namespace's addresses with 2000 on the link, each parsed (the verification's read of
// kube-ipvs0). The counterpart of the IPVS one in pkg/kernel/ipvs. Run with
//
//	go test -tags lab -exec "$PWD/hack/lab/run-in-guest.sh" -run '^$' -bench NetlinkStacks -benchmem ./pkg/kernel/netdev/
func BenchmarkNetlinkStacks(b *testing.B) {
	nstest.Enter(b)
	n := NewNetlink()
	if _, err := n.EnsureDummy(benchDev); err != nil {
		b.Fatal(err)
	}
	link, err := netlink.LinkByName(benchDev)
	if err != nil {
		b.Fatal(err)
	}
	idx := link.Attrs().Index
	var bound, batch []netip.Addr
	for i := range 2000 {
		bound = append(bound, netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)}))
	}
	for i := range nlmsg.MaxBatch {
		batch = append(batch, netip.AddrFrom4([4]byte{10, 97, 0, byte(i)}))
	}
	if err := n.AddAddresses(benchDev, bound, func(_ int, err error) { b.Fatal(err) }); err != nil {
		b.Fatal(err)
	}
	md := stackbench.Open(b, unix.NETLINK_ROUTE)
	var bodies [][]byte
	for _, a := range batch {
		w := &nlmsg.Writer{}
		putAddrMsg(w, idx, a)
		bodies = append(bodies, w.B)
	}
	refused := func(_ int, err error) { b.Fatal(err) }

	b.Run("batch64/nlmsg", func(b *testing.B) {
		for b.Loop() {
			if err := n.AddAddresses(benchDev, batch, refused); err != nil {
				b.Fatal(err)
			}
			if err := n.DeleteAddresses(benchDev, batch, refused); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, name := range stackbench.Variants {
		c := md[name]
		b.Run("batch64/"+name, func(b *testing.B) {
			for b.Loop() {
				if err := c.Batch(unix.RTM_NEWADDR, mdnetlink.Create|mdnetlink.Excl, bodies); err != nil {
					b.Fatal(err)
				}
				if err := c.Batch(unix.RTM_DELADDR, 0, bodies); err != nil {
					b.Fatal(err)
				}
			}
		})
	}

	b.Run("dump2000/nlmsg", func(b *testing.B) {
		for b.Loop() {
			// ListAddresses is this dump after a link lookup, which is no part of the comparison
			// (and would run outside the namespace: b.Run starts a goroutine).
			if got, err := n.addrs.dump(func(i int, _ netip.Addr) bool { return i == idx }); err != nil || len(got) != len(bound) {
				b.Fatal(len(got), err)
			}
		}
	})
	req := make([]byte, unix.SizeofIfAddrmsg)
	for _, name := range stackbench.Variants {
		c := md[name]
		b.Run("dump2000/"+name, func(b *testing.B) {
			var out []netip.Addr
			for b.Loop() {
				out = out[:0]
				err := c.Dump(unix.RTM_GETADDR, req, func(typ uint16, body []byte) error {
					if typ != unix.RTM_NEWADDR {
						return nil
					}
					i, a, ok, err := parseAddrMsg(body)
					if ok && i == idx {
						out = append(out, a)
					}
					return err
				})
				if err != nil || len(out) != len(bound) {
					b.Fatal(len(out), err)
				}
			}
		})
	}
}
