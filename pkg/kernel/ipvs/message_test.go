//go:build linux

package ipvs

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"

	libipvs "github.com/moby/ipvs"
	"golang.org/x/sys/unix"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/nlmsg"
)

// attrsOf decodes one level of attributes into type -> payload (the last of a type wins).
func attrsOf(t *testing.T, b []byte) map[uint16][]byte {
	t.Helper()
	out := map[uint16][]byte{}
	if err := nlmsg.Attrs(b, func(typ uint16, v []byte) error { out[typ] = v; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPutService(t *testing.T) {
	for _, tc := range []struct {
		name      string
		vs        VirtualServer
		full      bool
		af, proto uint16
		addr      []byte
		flags     uint32
		netmask   uint32
	}{{
		name: "ipv4 tcp full", full: true,
		vs: VirtualServer{Key: Key{Address: netip.MustParseAddr("10.0.0.1"), Protocol: TCP, Port: 80}, Scheduler: "rr"},
		af: unix.AF_INET, proto: 6, addr: []byte{10, 0, 0, 1}, netmask: 0xffffffff,
	}, {
		name: "ipv6 sctp persistent, hashed flag dropped", full: true,
		vs: VirtualServer{Key: Key{Address: netip.MustParseAddr("2001:db8::1"), Protocol: SCTP, Port: 3868}, Scheduler: "wrr",
			Flags: FlagPersistent | FlagHashed, Timeout: 10800},
		af: unix.AF_INET6, proto: 132, addr: netip.MustParseAddr("2001:db8::1").AsSlice(), flags: 1, netmask: 128,
	}, {
		name: "udp mh with fallback and port flags", full: true,
		vs: VirtualServer{Key: Key{Address: netip.MustParseAddr("10.0.0.2"), Protocol: UDP, Port: 53}, Scheduler: "mh",
			Flags: FlagSchedSH1 | FlagSchedSH2},
		af: unix.AF_INET, proto: 17, addr: []byte{10, 0, 0, 2}, flags: 0x18, netmask: 0xffffffff,
	}, {
		name: "key only (delete, real servers)",
		vs:   VirtualServer{Key: Key{Address: netip.MustParseAddr("10.0.0.3"), Protocol: TCP, Port: 8080}, Scheduler: "rr", Timeout: 5},
		af:   unix.AF_INET, proto: 6, addr: []byte{10, 0, 0, 3},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var w nlmsg.Writer
			if err := putService(&w, tc.vs, tc.full); err != nil {
				t.Fatal(err)
			}
			if len(w.B)%4 != 0 || int(binary.NativeEndian.Uint16(w.B)) != len(w.B) {
				t.Fatalf("nest length %d for %d bytes", binary.NativeEndian.Uint16(w.B), len(w.B))
			}
			top := attrsOf(t, w.B)
			a := attrsOf(t, top[attrService])
			if got := binary.NativeEndian.Uint16(a[svcAF]); got != tc.af {
				t.Errorf("af %d, want %d", got, tc.af)
			}
			if got := binary.NativeEndian.Uint16(a[svcProtocol]); got != tc.proto {
				t.Errorf("protocol %d, want %d", got, tc.proto)
			}
			if string(a[svcAddr]) != string(tc.addr) {
				t.Errorf("address % x, want % x", a[svcAddr], tc.addr)
			}
			if got := binary.BigEndian.Uint16(a[svcPort]); got != tc.vs.Port {
				t.Errorf("port %d (network order), want %d", got, tc.vs.Port)
			}
			if !tc.full {
				for _, typ := range []uint16{svcSchedName, svcFlags, svcTimeout, svcNetmask} {
					if _, ok := a[typ]; ok {
						t.Errorf("attribute %d in a key-only service", typ)
					}
				}
				return
			}
			if string(a[svcSchedName]) != tc.vs.Scheduler+"\x00" {
				t.Errorf("scheduler %q", a[svcSchedName])
			}
			fl := a[svcFlags]
			if len(fl) != 8 || binary.NativeEndian.Uint32(fl) != tc.flags || binary.NativeEndian.Uint32(fl[4:]) != 0xffffffff {
				t.Errorf("flags % x, want %#x with a full mask", fl, tc.flags)
			}
			if got := binary.NativeEndian.Uint32(a[svcTimeout]); got != tc.vs.Timeout {
				t.Errorf("timeout %d", got)
			}
			if got := binary.NativeEndian.Uint32(a[svcNetmask]); got != tc.netmask {
				t.Errorf("netmask %#x, want %#x", got, tc.netmask)
			}
		})
	}
}

func TestPutServiceRejects(t *testing.T) {
	for name, k := range map[string]Key{
		"invalid address": {Protocol: TCP, Port: 1},
		"mapped ipv4":     {Address: netip.MustParseAddr("::ffff:10.0.0.1"), Protocol: TCP, Port: 1},
		"zone":            {Address: netip.MustParseAddr("fe80::1%eth0"), Protocol: TCP, Port: 1},
		"protocol":        {Address: netip.MustParseAddr("10.0.0.1"), Protocol: "ICMP", Port: 1},
	} {
		var w nlmsg.Writer
		if err := putService(&w, VirtualServer{Key: k, Scheduler: "rr"}, true); err == nil {
			t.Errorf("%s: putService(%v) succeeded", name, k)
		}
	}
}

// kernelService builds a service attribute as the kernel dumps it: 16-byte address, the hashed
// flag set, statistics nested.
func kernelService(af, proto uint16, addr netip.Addr, port uint16, fwmark uint32, sched string, flags, timeout uint32) []byte {
	var w nlmsg.Writer
	s := w.Nest(attrService)
	w.U16(svcAF, af)
	if fwmark != 0 {
		w.U32(svcFWMark, fwmark)
	} else {
		w.U16(svcProtocol, proto)
		a16 := make([]byte, 16)
		copy(a16, addr.AsSlice())
		w.Put(svcAddr, a16)
		w.BE16(svcPort, port)
	}
	w.Str(svcSchedName, sched)
	fl := make([]byte, 8)
	binary.NativeEndian.PutUint32(fl, flags|uint32(FlagHashed))
	binary.NativeEndian.PutUint32(fl[4:], 0xffffffff)
	w.Put(svcFlags, fl)
	w.U32(svcTimeout, timeout)
	w.U32(svcNetmask, 0xffffffff)
	st := w.Nest(10) // IPVS_SVC_ATTR_STATS
	w.U32(1, 42)
	w.End(st)
	w.End(s)
	return w.B
}

func TestParseService(t *testing.T) {
	v4, v6 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("2001:db8::1")
	for _, tc := range []struct {
		name   string
		msg    []byte
		want   VirtualServer
		wantOK bool
	}{{
		name:   "ipv4 in 16 bytes, hashed dropped",
		msg:    kernelService(unix.AF_INET, 17, v4, 53, 0, "sh", 0x18, 0),
		want:   VirtualServer{Key: Key{Address: v4, Protocol: UDP, Port: 53}, Scheduler: "sh", Flags: FlagSchedSH1 | FlagSchedSH2},
		wantOK: true,
	}, {
		name:   "ipv6 sctp persistent",
		msg:    kernelService(unix.AF_INET6, 132, v6, 9, 0, "rr", 1, 60),
		want:   VirtualServer{Key: Key{Address: v6, Protocol: SCTP, Port: 9}, Scheduler: "rr", Flags: FlagPersistent, Timeout: 60},
		wantOK: true,
	}, {
		name: "fwmark skipped",
		msg:  kernelService(unix.AF_INET, 0, netip.Addr{}, 0, 7, "rr", 0, 0),
	}, {
		name: "unknown protocol skipped",
		msg:  kernelService(unix.AF_INET, 1, v4, 0, 0, "rr", 0, 0),
	}, {
		// The kernel takes any IPv6 address; this adapter spells an IPv4-mapped one as IPv4,
		// which would name another service (and its requests refuse it).
		name: "IPv4-mapped IPv6 skipped",
		msg:  kernelService(unix.AF_INET6, 6, netip.MustParseAddr("::ffff:10.0.0.1"), 80, 0, "rr", 0, 0),
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := parseService(tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.wantOK || got != tc.want {
				t.Errorf("parseService = %+v, %v; want %+v, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
	good := kernelService(unix.AF_INET, 6, v4, 80, 0, "rr", 0, 0)
	for name, msg := range map[string][]byte{
		"no service attribute":         {},
		"nest longer than the message": append(binary.NativeEndian.AppendUint16(nil, uint16(len(good)+8)), good[2:]...),
		"short port": func() []byte {
			var w nlmsg.Writer
			s := w.Nest(attrService)
			w.U16(svcAF, unix.AF_INET)
			w.Put(svcPort, []byte{1})
			w.End(s)
			return w.B
		}(),
	} {
		if _, _, err := parseService(msg); err == nil {
			t.Errorf("%s: parsed without an error", name)
		}
	}
}

// kernelDest builds a destination attribute as the kernel dumps it (af 0: an old kernel
// without the family attribute).
func kernelDest(addr netip.Addr, port uint16, af uint16, weight, active, inactive uint32) []byte {
	var w nlmsg.Writer
	s := w.Nest(attrDest)
	a16 := make([]byte, 16)
	copy(a16, addr.AsSlice())
	w.Put(destAddr, a16)
	w.BE16(destPort, port)
	w.U32(destFwdMethod, fwdMasq)
	w.U32(destWeight, weight)
	w.U32(destActiveConns, active)
	w.U32(destInactConns, inactive)
	if af != 0 {
		w.U16(destAddrFamily, af)
	}
	w.End(s)
	return w.B
}

func TestDestinations(t *testing.T) {
	vs4 := Key{Address: netip.MustParseAddr("10.0.0.1"), Protocol: TCP, Port: 80}
	vs6 := Key{Address: netip.MustParseAddr("2001:db8::1"), Protocol: TCP, Port: 80}
	for _, tc := range []struct {
		vs Key
		rs RealServer
		af uint16
	}{
		{vs4, RealServer{Address: netip.MustParseAddr("10.1.0.1"), Port: 8080, Weight: 1}, unix.AF_INET},
		{vs4, RealServer{Address: netip.MustParseAddr("10.1.0.2"), Port: 8080, Weight: 7}, 0},
		{vs6, RealServer{Address: netip.MustParseAddr("2001:db8::2"), Port: 8080, Weight: 0}, unix.AF_INET6},
		{vs6, RealServer{Address: netip.MustParseAddr("2001:db8::3"), Port: 1, Weight: 1}, 0},
	} {
		var w nlmsg.Writer
		if err := putDest(&w, tc.vs, tc.rs, true); err != nil {
			t.Fatal(err)
		}
		a := attrsOf(t, attrsOf(t, w.B)[attrDest])
		wantAF := uint16(unix.AF_INET)
		if tc.vs.Address.Is6() {
			wantAF = unix.AF_INET6
		}
		if string(a[destAddr]) != string(tc.rs.Address.AsSlice()) || binary.BigEndian.Uint16(a[destPort]) != tc.rs.Port ||
			binary.NativeEndian.Uint16(a[destAddrFamily]) != wantAF ||
			binary.NativeEndian.Uint32(a[destFwdMethod]) != libipvs.ConnectionFlagMasq ||
			binary.NativeEndian.Uint32(a[destWeight]) != uint32(tc.rs.Weight) {
			t.Errorf("%s: request attributes %v", tc.rs, a)
		}
		got, err := parseDest(kernelDest(tc.rs.Address, tc.rs.Port, tc.af, uint32(tc.rs.Weight), 3, 4), tc.vs)
		if err != nil {
			t.Fatal(err)
		}
		want := RealServerStatus{RealServer: tc.rs, ActiveConnections: 3, InactiveConnections: 4}
		if got != want {
			t.Errorf("parsed %+v, want %+v", got, want)
		}
	}
	var w nlmsg.Writer
	if err := putDest(&w, vs4, RealServer{Address: netip.MustParseAddr("2001:db8::2"), Port: 80, Weight: 1}, true); err == nil {
		t.Error("mixed families accepted")
	}
	if err := putDest(&w, vs4, RealServer{Address: netip.MustParseAddr("10.1.0.1"), Port: 80, Weight: -1}, true); err == nil {
		t.Error("negative weight accepted")
	}
	if _, err := parseDest(nil, vs4); err == nil {
		t.Error("message without a destination parsed")
	}
	// The kernel holds weights from 0 to 2^31-1; more is garbage (and putDest refuses it).
	if rs, err := parseDest(kernelDest(netip.MustParseAddr("10.1.0.1"), 80, unix.AF_INET, 1<<31, 0, 0), vs4); err == nil {
		t.Errorf("weight 2^31 parsed as %+v", rs)
	}
}

func TestMergeTimeouts(t *testing.T) {
	cur := timeouts{tcp: 900 * time.Second, tcpFin: 120 * time.Second, udp: 300 * time.Second}
	got := mergeTimeouts(cur, 0, 30*time.Second, 0)
	want := timeouts{tcp: 900 * time.Second, tcpFin: 30 * time.Second, udp: 300 * time.Second}
	if got != want {
		t.Errorf("mergeTimeouts = %+v, want %+v", got, want)
	}
}

// TestTimeoutsMessage: what putTimeouts writes parses back, whole seconds are what the kernel
// holds, and an answer missing a timeout or with a short value is an error, not a zero.
func TestTimeoutsMessage(t *testing.T) {
	in := timeouts{tcp: 900 * time.Second, tcpFin: 120*time.Second + 999*time.Millisecond, udp: 0}
	w := &nlmsg.Writer{}
	putTimeouts(w, in)
	got, err := parseTimeouts(w.B)
	want := timeouts{tcp: 900 * time.Second, tcpFin: 120 * time.Second}
	if err != nil || got != want {
		t.Errorf("round trip = %+v, %v; want %+v", got, err, want)
	}
	two := &nlmsg.Writer{}
	two.U32(attrTimeoutTCP, 900)
	two.U32(attrTimeoutUDP, 300)
	if _, err := parseTimeouts(two.B); !errors.Is(err, nlmsg.ErrMalformed) {
		t.Errorf("two timeouts: %v, want ErrMalformed", err)
	}
	short := &nlmsg.Writer{}
	short.Put(attrTimeoutTCP, []byte{1, 0})
	short.U32(attrTimeoutTCPFin, 120)
	short.U32(attrTimeoutUDP, 300)
	if _, err := parseTimeouts(short.B); err == nil {
		t.Error("a 2-byte timeout parsed")
	}
	if seconds(-time.Second) != 0 || seconds(1<<33*time.Second) != 1<<32-1 {
		t.Error("seconds does not clamp")
	}
}
