//go:build linux

// Package stackbench drives mdlayher/netlink the way the kernel adapters drive nlmsg, so the
// lab benchmarks can send both stacks the same bytes and compare them (BenchmarkNetlinkStacks
// in pkg/kernel/ipvs and pkg/kernel/netdev; reports in docs/bench-reports). Only those
// benchmarks import it.
package stackbench

import (
	"fmt"
	"testing"

	"github.com/mdlayher/netlink"
)

// Conn is an mdlayher/netlink socket used as the adapters use theirs: batches of write
// requests with one acknowledgement, and dumps read message by message.
type Conn struct {
	c *netlink.Conn
}

// Dial opens a socket of protocol proto in the calling thread's network namespace. bufSize
// is mdlayher's MessageBufferSize: 0 peeks at each datagram's size and allocates a buffer for
// it, more reuses one buffer of that size (and copies each datagram out of it).
func Dial(proto, bufSize int) (*Conn, error) {
	c, err := netlink.Dial(proto, &netlink.Config{MessageBufferSize: bufSize})
	if err != nil {
		return nil, err
	}
	return &Conn{c: c}, nil
}

func (c *Conn) Close() { c.c.Close() }

// Batch sends one request of type typ per body in one datagram, the last one asking for an
// acknowledgement, and waits for it (the shape of nlmsg.Conn.DoBatch). A refusal is an error.
func (c *Conn) Batch(typ uint16, flags netlink.HeaderFlags, bodies [][]byte) error {
	msgs := make([]netlink.Message, len(bodies))
	for i, b := range bodies {
		msgs[i] = netlink.Message{Header: netlink.Header{Type: netlink.HeaderType(typ), Flags: netlink.Request | flags}, Data: b}
	}
	msgs[len(msgs)-1].Header.Flags |= netlink.Acknowledge
	sent, err := c.c.SendMessages(msgs)
	if err != nil {
		return err
	}
	last := sent[len(sent)-1].Header.Sequence
	for {
		for m, err := range c.c.ReceiveIter() {
			if err != nil {
				return err
			}
			if m.Header.Type == netlink.Error && m.Header.Sequence == last {
				return nil
			}
		}
	}
}

// Dump sends a dump request of type typ and calls each with every answering message's type and
// body, read in place, until the end of the dump.
func (c *Conn) Dump(typ uint16, body []byte, each func(typ uint16, body []byte) error) error {
	if _, err := c.c.Send(netlink.Message{Header: netlink.Header{Type: netlink.HeaderType(typ),
		Flags: netlink.Request | netlink.Dump}, Data: body}); err != nil {
		return err
	}
	for m, err := range c.c.ReceiveIter() {
		if err != nil {
			return err
		}
		if m.Header.Flags&netlink.DumpInterrupted != 0 {
			return fmt.Errorf("dump interrupted")
		}
		if err := each(uint16(m.Header.Type), m.Data); err != nil {
			return err
		}
	}
	return nil
}

// Variants names the two ways Open dials mdlayher, in the order the benchmarks run them.
var Variants = []string{"mdlayher", "mdlayher-pool"}

// Open dials every variant for protocol proto in the calling thread's network namespace (the
// benchmark's; b.Run starts goroutines on other threads) and closes them when tb ends.
func Open(tb testing.TB, proto int) map[string]*Conn {
	tb.Helper()
	out := map[string]*Conn{}
	for i, size := range []int{0, 64 << 10} {
		c, err := Dial(proto, size)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(c.Close)
		out[Variants[i]] = c
	}
	return out
}
