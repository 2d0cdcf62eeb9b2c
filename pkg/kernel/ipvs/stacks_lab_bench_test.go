//go:build lab

package ipvs

import (
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/nlmsg"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/stackbench"
)

// BenchmarkNetlinkStacks sends the same IPVS requests through this adapter's socket (nlmsg) and
// through mdlayher/netlink, in one run on the lab kernel: a batch of 64 real-server additions
// then a batch of their 64 deletions (a cold start's and a Service removal's shape), and the
// dump of a virtual server's 1000 real servers, each parsed (the verification's read). mdlayher
// runs without a buffer pool (a peek and an allocation per datagram) and with one. Run with
//
//	go test -tags lab -exec "$PWD/hack/lab/run-in-guest.sh" -run '^$' -bench NetlinkStacks -benchmem ./pkg/kernel/ipvs/
func BenchmarkNetlinkStacks(b *testing.B) {
	n := labNetlink(b)
	small := VirtualServer{Key: Key{Address: netip.MustParseAddr("10.96.0.1"), Protocol: TCP, Port: 80}, Scheduler: "rr"}
	big := VirtualServer{Key: Key{Address: netip.MustParseAddr("10.96.0.2"), Protocol: TCP, Port: 80}, Scheduler: "rr"}
	var adds []Addition
	adds = append(adds, VirtualServerAddition(small), VirtualServerAddition(big))
	for i := range 1000 {
		rs := RealServer{Address: netip.AddrFrom4([4]byte{10, 244, byte(i >> 8), byte(i)}), Port: 8080, Weight: 1}
		adds = append(adds, RealServerAddition(big.Key, rs))
	}
	if err := n.Add(adds, func(_ int, err error) { b.Fatal(err) }); err != nil {
		b.Fatal(err)
	}
	var batch []RealServer
	for i := range nlmsg.MaxBatch {
		batch = append(batch, RealServer{Address: netip.AddrFrom4([4]byte{10, 245, 0, byte(i)}), Port: 8080, Weight: 1})
	}
	md := stackbench.Open(b, unix.NETLINK_GENERIC)
	bodies := func(cmd uint8, full bool) [][]byte {
		var out [][]byte
		for _, rs := range batch {
			w := &nlmsg.Writer{B: []byte{cmd, genlVersion, 0, 0}}
			if err := putService(w, VirtualServer{Key: small.Key}, false); err != nil {
				b.Fatal(err)
			}
			if err := putDest(w, small.Key, rs, full); err != nil {
				b.Fatal(err)
			}
			out = append(out, w.B)
		}
		return out
	}
	addBodies, delBodies := bodies(cmdNewDest, true), bodies(cmdDelDest, false)
	dumpReq := &nlmsg.Writer{B: []byte{cmdGetDest, genlVersion, 0, 0}}
	if err := putService(dumpReq, VirtualServer{Key: big.Key}, false); err != nil {
		b.Fatal(err)
	}

	ourBatch := func(cmd uint8, full bool) error {
		n.c.c.BeginBatch()
		for _, rs := range batch {
			w := n.c.next(cmd)
			if err := putService(w, VirtualServer{Key: small.Key}, false); err != nil {
				return err
			}
			if err := putDest(w, small.Key, rs, full); err != nil {
				return err
			}
		}
		return n.c.c.DoBatch(n.c.family, 0, func(_ int, err error) { b.Fatal(err) })
	}
	b.Run("batch64/nlmsg", func(b *testing.B) {
		for b.Loop() {
			if err := ourBatch(cmdNewDest, true); err != nil {
				b.Fatal(err)
			}
			if err := ourBatch(cmdDelDest, false); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, name := range stackbench.Variants {
		c := md[name]
		b.Run("batch64/"+name, func(b *testing.B) {
			for b.Loop() {
				if err := c.Batch(n.c.family, 0, addBodies); err != nil {
					b.Fatal(err)
				}
				if err := c.Batch(n.c.family, 0, delBodies); err != nil {
					b.Fatal(err)
				}
			}
		})
	}

	// The dumps run the same loop over each stack: ListRealServers is this one plus a retry of an
	// interrupted dump and a fresh result slice.
	b.Run("dump1000/nlmsg", func(b *testing.B) {
		var out []RealServerStatus
		for b.Loop() {
			out = out[:0]
			w := n.c.c.Begin()
			w.B = append(w.B, dumpReq.B...)
			err := n.c.do(true, func(msg []byte) error {
				rs, err := parseDest(msg, big.Key)
				out = append(out, rs)
				return err
			})
			if err != nil || len(out) != 1000 {
				b.Fatal(len(out), err)
			}
		}
	})
	for _, name := range stackbench.Variants {
		c := md[name]
		b.Run("dump1000/"+name, func(b *testing.B) {
			var out []RealServerStatus
			for b.Loop() {
				out = out[:0]
				err := c.Dump(n.c.family, dumpReq.B, func(typ uint16, body []byte) error {
					if typ != n.c.family {
						return nil
					}
					rs, err := parseDest(body[genlHeaderLength:], big.Key)
					out = append(out, rs)
					return err
				})
				if err != nil || len(out) != 1000 {
					b.Fatal(len(out), err)
				}
			}
		})
	}
}
