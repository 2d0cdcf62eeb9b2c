//go:build linux

package ipvs

import (
	"net/netip"
	"testing"
	"time"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/nlmsg"
)

// Seeds: testdata/fuzz/<FuzzName>/, the dump messages of message_test.go's kernelService and
// kernelDest. `go test` runs them; `make fuzz` fuzzes.

// FuzzParseService: a service the adapter takes as its own is one it can address again (its
// key passes the checks of every request), and reads back the same once written.
func FuzzParseService(f *testing.F) {
	f.Fuzz(func(t *testing.T, msg []byte) {
		vs, ok, err := parseService(msg)
		if err != nil || !ok {
			return
		}
		if err := validKey(vs.Key); err != nil {
			t.Fatalf("parsed %+v: %v", vs, err)
		}
		if vs.Flags&FlagHashed != 0 {
			t.Fatalf("parsed %+v with the hashed flag", vs)
		}
		var w nlmsg.Writer
		if err := putService(&w, vs, true); err != nil {
			t.Fatalf("writing parsed %+v: %v", vs, err)
		}
		again, ok, err := parseService(w.B)
		if err != nil || !ok || again != vs {
			t.Fatalf("parsed %+v, wrote it, read back %+v, %v, %v", vs, again, ok, err)
		}
	})
}

// FuzzParseDest: a destination read has an address of the family it claims, a weight the
// kernel can hold, and counts that are not negative; one of the virtual server's family reads
// back the same once written.
func FuzzParseDest(f *testing.F) {
	vs4 := Key{Address: netip.MustParseAddr("10.0.0.1"), Protocol: TCP, Port: 80}
	vs6 := Key{Address: netip.MustParseAddr("2001:db8::1"), Protocol: UDP, Port: 53}
	f.Fuzz(func(t *testing.T, msg []byte, v6 bool) {
		vs := vs4
		if v6 {
			vs = vs6
		}
		rs, err := parseDest(msg, vs)
		if err != nil {
			return
		}
		if !rs.Address.IsValid() || rs.Weight < 0 || rs.ActiveConnections < 0 || rs.InactiveConnections < 0 {
			t.Fatalf("parsed %+v", rs)
		}
		if validRealServer(vs, rs.RealServer) != nil {
			return // another family (tunnels) or an IPv4-mapped address: not written by this adapter
		}
		var w nlmsg.Writer
		if err := putDest(&w, vs, rs.RealServer, true); err != nil {
			t.Fatalf("writing parsed %+v: %v", rs, err)
		}
		again, err := parseDest(w.B, vs)
		if err != nil || again.RealServer != rs.RealServer {
			t.Fatalf("parsed %+v, wrote it, read back %+v, %v", rs, again, err)
		}
	})
}

// FuzzParseTimeouts: timeouts read from any answer are whole seconds the kernel can hold, and
// read back the same once written.
func FuzzParseTimeouts(f *testing.F) {
	var w nlmsg.Writer
	putTimeouts(&w, timeouts{tcp: 900 * time.Second, tcpFin: 120 * time.Second, udp: 300 * time.Second})
	f.Add(w.B)
	f.Fuzz(func(t *testing.T, msg []byte) {
		got, err := parseTimeouts(msg)
		if err != nil {
			return
		}
		for _, d := range []time.Duration{got.tcp, got.tcpFin, got.udp} {
			if d < 0 || d%time.Second != 0 || d > (1<<32-1)*time.Second {
				t.Fatalf("parsed %+v", got)
			}
		}
		var again nlmsg.Writer
		putTimeouts(&again, got)
		if back, err := parseTimeouts(again.B); err != nil || back != got {
			t.Fatalf("parsed %+v, wrote it, read back %+v, %v", got, back, err)
		}
	})
}
