//go:build linux

package ipvs

import (
	"net"
	"net/netip"
	"reflect"
	"testing"

	libipvs "github.com/moby/ipvs"
	"golang.org/x/sys/unix"
)

func TestToService(t *testing.T) {
	tests := []struct {
		name string
		vs   VirtualServer
		want libipvs.Service
	}{{
		name: "ipv4 tcp",
		vs:   VirtualServer{Key: Key{netip.MustParseAddr("10.0.0.1"), TCP, 80}, Scheduler: "rr"},
		want: libipvs.Service{Address: net.IP{10, 0, 0, 1}, Protocol: 6, Port: 80, SchedName: "rr",
			AddressFamily: unix.AF_INET, Netmask: 0xffffffff},
	}, {
		name: "ipv6 sctp persistent, hashed flag dropped",
		vs: VirtualServer{Key: Key{netip.MustParseAddr("2001:db8::1"), SCTP, 3868}, Scheduler: "wrr",
			Flags: FlagPersistent | FlagHashed, Timeout: 10800},
		want: libipvs.Service{Address: net.ParseIP("2001:db8::1"), Protocol: 132, Port: 3868, SchedName: "wrr",
			Flags: 1, Timeout: 10800, AddressFamily: unix.AF_INET6, Netmask: 128},
	}, {
		name: "udp mh with fallback and port flags",
		vs: VirtualServer{Key: Key{netip.MustParseAddr("10.0.0.2"), UDP, 53}, Scheduler: "mh",
			Flags: FlagSchedSH1 | FlagSchedSH2},
		want: libipvs.Service{Address: net.IP{10, 0, 0, 2}, Protocol: 17, Port: 53, SchedName: "mh",
			Flags: 0x18, AddressFamily: unix.AF_INET, Netmask: 0xffffffff},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := toService(tt.vs)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("toService = %+v, want %+v", *got, tt.want)
			}
		})
	}
}

func TestToServiceRejects(t *testing.T) {
	for name, k := range map[string]Key{
		"invalid address": {Protocol: TCP, Port: 1},
		"mapped ipv4":     {netip.MustParseAddr("::ffff:10.0.0.1"), TCP, 1},
		"zone":            {netip.MustParseAddr("fe80::1%eth0"), TCP, 1},
		"protocol":        {netip.MustParseAddr("10.0.0.1"), "ICMP", 1},
	} {
		if _, err := toService(VirtualServer{Key: k, Scheduler: "rr"}); err == nil {
			t.Errorf("%s: toService(%v) succeeded", name, k)
		}
	}
}

func TestFromService(t *testing.T) {
	tests := []struct {
		name   string
		svc    libipvs.Service
		want   VirtualServer
		wantOK bool
	}{{
		// moby hands IPv4 addresses back as 4-byte slices; netip must not see them as IPv6.
		name: "ipv4 hashed",
		svc: libipvs.Service{Address: net.IP{10, 0, 0, 1}, Protocol: 6, Port: 80, SchedName: "rr",
			Flags: 2, AddressFamily: unix.AF_INET, Netmask: 0xffffffff},
		want:   VirtualServer{Key: Key{netip.MustParseAddr("10.0.0.1"), TCP, 80}, Scheduler: "rr"},
		wantOK: true,
	}, {
		name: "ipv4 in 16 bytes",
		svc: libipvs.Service{Address: net.ParseIP("10.0.0.1"), Protocol: 17, Port: 53, SchedName: "sh",
			Flags: 2 | 0x8 | 0x10, AddressFamily: unix.AF_INET},
		want:   VirtualServer{Key: Key{netip.MustParseAddr("10.0.0.1"), UDP, 53}, Scheduler: "sh", Flags: FlagSchedSH1 | FlagSchedSH2},
		wantOK: true,
	}, {
		name: "ipv6 sctp persistent",
		svc: libipvs.Service{Address: net.ParseIP("2001:db8::1"), Protocol: 132, Port: 9, SchedName: "rr",
			Flags: 3, Timeout: 60, AddressFamily: unix.AF_INET6, Netmask: 128},
		want:   VirtualServer{Key: Key{netip.MustParseAddr("2001:db8::1"), SCTP, 9}, Scheduler: "rr", Flags: FlagPersistent, Timeout: 60},
		wantOK: true,
	}, {
		name: "fwmark skipped",
		svc:  libipvs.Service{FWMark: 7, AddressFamily: unix.AF_INET, SchedName: "rr", Flags: 2},
	}, {
		name: "unknown protocol skipped",
		svc:  libipvs.Service{Address: net.IP{10, 0, 0, 1}, Protocol: 1, AddressFamily: unix.AF_INET},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := fromService(&tt.svc)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.wantOK || got != tt.want {
				t.Errorf("fromService = %+v, %v; want %+v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestDestinationRoundTrip(t *testing.T) {
	vs4 := Key{netip.MustParseAddr("10.0.0.1"), TCP, 80}
	vs6 := Key{netip.MustParseAddr("2001:db8::1"), TCP, 80}
	for _, tc := range []struct {
		vs Key
		rs RealServer
		af uint16
	}{
		{vs4, RealServer{netip.MustParseAddr("10.1.0.1"), 8080, 1}, unix.AF_INET},
		{vs6, RealServer{netip.MustParseAddr("2001:db8::2"), 8080, 0}, unix.AF_INET6},
	} {
		d, err := toDestination(tc.vs, tc.rs)
		if err != nil {
			t.Fatal(err)
		}
		if d.ConnectionFlags != libipvs.ConnectionFlagMasq || d.AddressFamily != tc.af {
			t.Errorf("%s: flags %#x family %d", tc.rs, d.ConnectionFlags, d.AddressFamily)
		}
		d.ActiveConnections, d.InactiveConnections = 3, 4
		// The kernel answers with 16-byte addresses for both families.
		d.Address = d.Address.To16()
		got, err := fromDestination(d)
		if err != nil {
			t.Fatal(err)
		}
		want := RealServerStatus{RealServer: tc.rs, ActiveConnections: 3, InactiveConnections: 4}
		if got != want {
			t.Errorf("round trip = %+v, want %+v", got, want)
		}
	}
	if _, err := toDestination(vs4, RealServer{netip.MustParseAddr("2001:db8::2"), 80, 1}); err == nil {
		t.Error("mixed families accepted")
	}
	if _, err := toDestination(vs4, RealServer{netip.MustParseAddr("10.1.0.1"), 80, -1}); err == nil {
		t.Error("negative weight accepted")
	}
}

func TestMergeTimeouts(t *testing.T) {
	cur := libipvs.Config{TimeoutTCP: 900e9, TimeoutTCPFin: 120e9, TimeoutUDP: 300e9}
	got := mergeTimeouts(cur, 0, 30e9, 0)
	want := libipvs.Config{TimeoutTCP: 900e9, TimeoutTCPFin: 30e9, TimeoutUDP: 300e9}
	if got != want {
		t.Errorf("mergeTimeouts = %+v, want %+v", got, want)
	}
}
