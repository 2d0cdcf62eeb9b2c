//go:build linux

package nlmsg

import (
	"encoding/binary"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// MaxBatch is the most requests one batch sends. A refused request is answered even without an
// acknowledgement asked for, and the answer holds a copy of the request: 64 answers stay far
// below the socket's default receive buffer (212992 bytes), so none is dropped.
const MaxBatch = 64

// BeginBatch starts a batch of write requests that Next adds to and DoBatch sends.
func (c *Conn) BeginBatch() {
	c.w.B = c.w.B[:0]
	c.starts = c.starts[:0]
}

// Next starts the next request of the batch: the returned writer holds room for its netlink
// header (filled in by DoBatch); append its body. At most MaxBatch requests.
func (c *Conn) Next() *Writer {
	for len(c.w.B)%4 != 0 { // each message starts aligned
		c.w.B = append(c.w.B, 0)
	}
	c.starts = append(c.starts, len(c.w.B))
	c.w.B = append(c.w.B, make([]byte, unix.NLMSG_HDRLEN)...)
	return &c.w
}

// DoBatch sends the batch's requests, as messages of type typ with flags (besides
// NLM_F_REQUEST and NLM_F_ACK, e.g. NLM_F_CREATE), in one datagram, and calls refused for each
// one the kernel refused, with its index and error.
//
// Why: every request is a round trip otherwise (a send, the kernel's acknowledgement, a
// receive): two system calls per object at a cold start, which adds every real server. The
// kernel handles the messages of one datagram in order and answers a refused one whether or not an
// acknowledgement was asked for; so only the last asks for one, and its answer, read after any
// refusals before it, ends the batch: two system calls for up to MaxBatch requests.
//
// An error returned means the round trip itself failed: which requests took effect is unknown.
func (c *Conn) DoBatch(typ, flags uint16, refused func(i int, err error)) error {
	n := len(c.starts)
	switch {
	case n == 0:
		return nil
	case n > MaxBatch:
		return fmt.Errorf("netlink batch of %d requests, at most %d", n, MaxBatch)
	}
	first := c.seq + 1
	for i, start := range c.starts {
		end := len(c.w.B)
		if i+1 < n {
			end = c.starts[i+1]
		}
		c.seq++
		f := flags | unix.NLM_F_REQUEST
		if i == n-1 {
			f |= unix.NLM_F_ACK
		}
		putHeader(c.w.B[start:], end-start, typ, f, c.seq)
	}
	if err := c.send(); err != nil {
		return err
	}
	for {
		d, err := c.recv()
		if err != nil {
			return err
		}
		done, err := walkAnswers(d, first, c.seq, refused)
		if err != nil || done {
			return err
		}
	}
}

// walkAnswers handles one datagram of answers to the requests numbered first..last: it calls
// refused for each error answer and reports whether the last request's answer came.
func walkAnswers(b []byte, first, last uint32, refused func(int, error)) (done bool, err error) {
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(binary.NativeEndian.Uint32(b))
		typ := binary.NativeEndian.Uint16(b[4:])
		seq := binary.NativeEndian.Uint32(b[8:])
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return true, fmt.Errorf("%w: message of %d bytes in %d", ErrMalformed, l, len(b))
		}
		body := b[unix.NLMSG_HDRLEN:l]
		if next := (l + 3) &^ 3; next < len(b) {
			b = b[next:]
		} else {
			b = nil
		}
		if seq-first > last-first || typ != unix.NLMSG_ERROR {
			continue // a late answer of an earlier request that gave up
		}
		if len(body) < 4 {
			return true, fmt.Errorf("%w: short error message", ErrMalformed)
		}
		if e := int32(binary.NativeEndian.Uint32(body)); e != 0 && refused != nil {
			refused(int(seq-first), syscall.Errno(-e))
		}
		if seq == last {
			return true, nil
		}
	}
	return false, nil
}
