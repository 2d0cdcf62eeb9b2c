//go:build linux

package sockdiag

import (
	"net/netip"
	"testing"
)

// Seeds: testdata/fuzz/FuzzAppendListeners/, the inet_diag_msg answers of the host's kernel
// for the sockets of TestListenersHost (kernel-*: TCP and UDP, IPv4 and IPv6, on :: with and
// without IPV6_V6ONLY) and message_test.go's SCTP messages with INET_DIAG_LOCALS. `go test`
// runs them; `make fuzz` fuzzes.

var fuzzProtocols = []Protocol{TCP, UDP, SCTP}

// FuzzAppendListeners: every listener read has the protocol asked for, a port, a valid
// address that is not IPv4-mapped and has no zone, and is DualStack only on ::.
func FuzzAppendListeners(f *testing.F) {
	f.Fuzz(func(t *testing.T, proto uint8, body []byte) {
		p := fuzzProtocols[int(proto)%len(fuzzProtocols)]
		ls, err := appendListeners(nil, p, body)
		if err != nil {
			if len(ls) != 0 {
				t.Fatalf("listeners %v with the error %v", ls, err)
			}
			return
		}
		for _, l := range ls {
			if l.Protocol != p || l.Port == 0 || !l.Address.IsValid() || l.Address.Is4In6() || l.Address.Zone() != "" ||
				(l.DualStack && l.Address != netip.IPv6Unspecified()) {
				t.Fatalf("listener %+v from a %s dump", l, p)
			}
		}
	})
}
