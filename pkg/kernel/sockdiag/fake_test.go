package sockdiag

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
)

func TestCovers(t *testing.T) {
	l := func(a string, dual bool) Listener {
		return Listener{Protocol: TCP, Address: netip.MustParseAddr(a), Port: 22, DualStack: dual}
	}
	for _, tc := range []struct {
		l    Listener
		addr string
		want bool
	}{
		{l("10.0.0.1", false), "10.0.0.1", true},
		{l("10.0.0.1", false), "10.0.0.2", false},
		{l("10.0.0.1", false), "::ffff:10.0.0.1", true},
		{l("0.0.0.0", false), "192.168.1.10", true},
		{l("0.0.0.0", false), "fd00::1", false},
		{l("::", false), "fd00::1", true},
		{l("::", false), "192.168.1.10", false},
		{l("::", true), "192.168.1.10", true},
		{l("::", true), "fd00::1", true},
		{l("fd00::1", false), "fd00::2", false},
		{l("fd00::1", false), "fd00::1", true},
	} {
		if got := tc.l.Covers(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("%v covers %s: %v, want %v", tc.l, tc.addr, got, tc.want)
		}
	}
	if (Listener{Protocol: UDP, Address: netip.IPv6Unspecified(), Port: 1, DualStack: true}).Covers(netip.Addr{}) {
		t.Error("the zero address is covered")
	}
}

func TestFake(t *testing.T) {
	f := NewFake()
	if got, err := f.Listeners(); err != nil || len(got) != 0 {
		t.Fatalf("a new Fake: %v, %v", got, err)
	}
	f.Listen(TCP, "0.0.0.0", 10250)
	f.Listen(TCP, "::ffff:10.0.0.1", 80)
	f.ListenDualStack(UDP, 53)
	f.Listen(TCP, "0.0.0.0", 10250) // SO_REUSEPORT
	want := []Listener{
		{Protocol: TCP, Address: netip.MustParseAddr("0.0.0.0"), Port: 10250},
		{Protocol: TCP, Address: netip.MustParseAddr("10.0.0.1"), Port: 80},
		{Protocol: UDP, Address: netip.IPv6Unspecified(), Port: 53, DualStack: true},
	}
	if got, err := f.Listeners(); err != nil || !slices.Equal(got, want) {
		t.Errorf("Listeners = %v, %v; want %v", got, err, want)
	}
	f.SetListeners(Listener{Protocol: SCTP, Address: netip.MustParseAddr("10.0.0.1"), Port: 9, DualStack: true})
	if got, _ := f.Listeners(); len(got) != 1 || got[0].DualStack {
		t.Errorf("after SetListeners: %v; want one SCTP listener, not dual stack (not on ::)", got)
	}
	boom := errors.New("boom")
	f.InjectError("Listeners", boom)
	if _, err := f.Listeners(); err != boom {
		t.Errorf("injected: %v", err)
	}
	if f.Reads() != 4 || f.Writes() != 0 {
		t.Errorf("reads, writes = %d, %d; want 4, 0", f.Reads(), f.Writes())
	}
}
