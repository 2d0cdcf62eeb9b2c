//go:build linux

package nlmsg

import (
	"testing"

	"golang.org/x/sys/unix"
)

// Seeds: testdata/fuzz/<FuzzName>/, attributes and datagrams as the tests above build them
// (the kernel's layout). `go test` runs them; `make fuzz` fuzzes.

// FuzzAttrs: the attributes are disjoint pieces of the input, each after its 4-byte header, so
// the walk ends within len(b)/4 calls; Nested returns one of them or nil.
func FuzzAttrs(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte, typ uint16) {
		calls, used := 0, 0
		var payloads [][]byte
		err := Attrs(b, func(_ uint16, v []byte) error {
			calls++
			used += attrHeaderLen + len(v)
			payloads = append(payloads, v)
			return nil
		})
		if calls > len(b)/attrHeaderLen || used > len(b) {
			t.Fatalf("%d attributes of %d bytes in %d bytes (err %v)", calls, used, len(b), err)
		}
		n, nerr := Nested(b, typ)
		if (nerr == nil) != (err == nil) {
			t.Fatalf("Attrs: %v, Nested: %v", err, nerr)
		}
		if n != nil && len(n) > len(b)-attrHeaderLen {
			t.Fatalf("nested attribute of %d bytes in %d", len(n), len(b))
		}
	})
}

// FuzzWalk: a datagram's messages are disjoint pieces of it, each after its header; an answer
// that ends the request (done) stops the walk.
func FuzzWalk(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte, seq uint32) {
		c := &Conn{seq: seq}
		calls, used := 0, 0
		done, _, err := c.walk(b, func(_ uint16, body []byte) error {
			calls++
			used += unix.NLMSG_HDRLEN + len(body)
			return nil
		})
		if calls > len(b)/unix.NLMSG_HDRLEN || used > len(b) {
			t.Fatalf("%d messages of %d bytes in %d bytes", calls, used, len(b))
		}
		if err != nil && !done {
			t.Fatalf("error %v without ending the answer", err)
		}
	})
}

// FuzzWalkAnswers: refusals are reported for requests of the batch only.
func FuzzWalkAnswers(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte, first uint32, n uint8) {
		last := first + uint32(n)
		_, _ = walkAnswers(b, first, last, func(i int, err error) {
			if i < 0 || i > int(n) || err == nil {
				t.Fatalf("refusal %d (%v) in a batch of %d", i, err, int(n)+1)
			}
		})
	})
}
