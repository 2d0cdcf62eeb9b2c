//go:build linux

package netdev

import (
	"testing"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/nlmsg"
)

// Seeds: testdata/fuzz/FuzzParseAddrMsg/, the RTM_NEWADDR bodies of an address dump of a test
// namespace on the host (kernel-*: IPv4 and IPv6 on lo and on a veth, with their labels, flags
// and cache info) and addrdump_test.go's messages (a point-to-point peer, an IPv4-mapped
// address, another family). `go test` runs them; `make fuzz` fuzzes.

// FuzzParseAddrMsg: an address read is one the adapter can bind and unbind again (valid, not
// IPv4-mapped, no zone), and reads back the same from the message putAddrMsg writes for it.
func FuzzParseAddrMsg(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		idx, a, ok, err := parseAddrMsg(body)
		if err != nil || !ok {
			return
		}
		if err := validAddr(a); err != nil {
			t.Fatalf("parsed %v on %d: %v", a, idx, err)
		}
		if uint64(idx) > 1<<32-1 || idx < 0 {
			t.Fatalf("parsed index %d", idx)
		}
		var w nlmsg.Writer
		putAddrMsg(&w, idx, a)
		idx2, a2, ok, err := parseAddrMsg(w.B)
		if err != nil || !ok || idx2 != idx || a2 != a {
			t.Fatalf("parsed %v on %d, wrote it, read back %v on %d, %v, %v", a, idx, a2, idx2, ok, err)
		}
	})
}
