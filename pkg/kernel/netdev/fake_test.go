package netdev

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
)

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestFakeDummyAndAddresses(t *testing.T) {
	f := NewFake()
	if _, err := f.ListAddresses("kube-ipvs0"); !errors.Is(err, ErrLinkNotFound) {
		t.Fatalf("ListAddresses on missing link: %v, want ErrLinkNotFound", err)
	}
	if err := f.AddAddress("kube-ipvs0", netip.MustParseAddr("10.96.0.1")); !errors.Is(err, ErrLinkNotFound) {
		t.Fatalf("AddAddress on missing link: %v, want ErrLinkNotFound", err)
	}
	for i, want := range []bool{true, false} {
		if created, err := f.EnsureDummy("kube-ipvs0"); err != nil || created != want {
			t.Fatalf("EnsureDummy #%d = %v, %v; want %v", i, created, err, want)
		}
	}
	if kind, up, _ := f.LinkKind("kube-ipvs0"); kind != "dummy" || up {
		t.Errorf("kube-ipvs0 is %s up=%v, want a dummy left down", kind, up)
	}
	for _, a := range addrs("10.96.0.1", "fd00::1", "10.96.0.1") {
		if err := f.AddAddress("kube-ipvs0", a); err != nil {
			t.Fatalf("AddAddress(%s): %v", a, err)
		}
	}
	if err := f.AddAddress("kube-ipvs0", netip.MustParseAddr("::ffff:10.0.0.1")); err == nil {
		t.Error("IPv4-mapped address accepted")
	}
	got, err := f.ListAddresses("kube-ipvs0")
	if err != nil || !slices.Equal(got, addrs("10.96.0.1", "fd00::1")) {
		t.Fatalf("ListAddresses = %v, %v", got, err)
	}
	for _, a := range addrs("10.96.0.1", "10.96.0.1") {
		if err := f.DeleteAddress("kube-ipvs0", a); err != nil {
			t.Fatalf("DeleteAddress(%s): %v", a, err)
		}
	}
	if got := f.Addresses("kube-ipvs0"); !slices.Equal(got, addrs("fd00::1")) {
		t.Errorf("after delete: %v", got)
	}
	if err := f.DeleteLink("kube-ipvs0"); err != nil {
		t.Fatal(err)
	}
	if err := f.DeleteLink("kube-ipvs0"); err != nil {
		t.Errorf("deleting a missing link: %v", err)
	}
	if r, w := f.Reads(), f.Writes(); r != 2 || w != 11 {
		t.Errorf("reads, writes = %d, %d; want 2, 11", r, w)
	}
	if c := f.Count("AddAddress"); c != 5 {
		t.Errorf("AddAddress count %d, want 5", c)
	}
}

func TestFakeLocalAddresses(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(f *Fake)
		exclude string
		want    []netip.Addr
	}{
		{"fresh namespace: loopback only, none served", nil, "kube-ipvs0", nil},
		{"node addresses without link-local v6", func(f *Fake) {
			f.AddLink("eth0", addrs("192.168.1.10", "fe80::1", "2001:db8::10", "169.254.1.1")...)
		}, "kube-ipvs0", addrs("169.254.1.1", "192.168.1.10", "2001:db8::10")},
		{"excluded link dropped, shared address kept", func(f *Fake) {
			f.AddLink("eth0", addrs("192.168.1.10")...)
			f.AddLink("kube-ipvs0", addrs("10.96.0.1", "192.168.1.10")...)
		}, "kube-ipvs0", addrs("192.168.1.10")},
		{"no exclusion", func(f *Fake) {
			f.AddLink("kube-ipvs0", addrs("10.96.0.1")...)
		}, "", addrs("10.96.0.1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFake()
			if tt.setup != nil {
				tt.setup(f)
			}
			got, err := f.LocalAddresses(tt.exclude)
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("LocalAddresses = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestFakeVXLANAndInjection(t *testing.T) {
	f := NewFake()
	f.AddVXLAN("flannel.1", 0)
	f.AddVXLAN("vxlan.calico", 4789)
	f.AddVXLAN("other", 4789)
	got, err := f.VXLANPorts()
	if err != nil || !slices.Equal(got, []uint16{4789, DefaultVXLANPort}) {
		t.Errorf("VXLANPorts = %v, %v", got, err)
	}
	boom := errors.New("boom")
	f.InjectError("EnsureDummy", boom)
	if _, err := f.EnsureDummy("kube-ipvs0"); err != boom {
		t.Fatalf("EnsureDummy = %v, want injected error", err)
	}
	if _, _, ok := f.LinkKind("kube-ipvs0"); ok {
		t.Error("injected failure created the link")
	}
	f.ResetCounts()
	if f.Reads()+f.Writes() != 0 {
		t.Error("ResetCounts left counts")
	}
}

func TestSortedUnique(t *testing.T) {
	got := sortedUnique(addrs("10.0.0.2", "::1", "10.0.0.1", "10.0.0.2"))
	if !slices.Equal(got, addrs("10.0.0.1", "10.0.0.2", "::1")) {
		t.Errorf("sortedUnique = %v", got)
	}
}

// TestFakeAddAddresses: each address is bound as AddAddress would bind it (and counted as
// one); refusals come back by index; a missing link or an error injected for "AddAddresses"
// fails the call with nothing bound.
func TestFakeAddAddresses(t *testing.T) {
	f := NewFake()
	boom := errors.New("boom")
	in := []netip.Addr{netip.MustParseAddr("10.96.0.1"), netip.MustParseAddr("::ffff:10.96.0.2"), netip.MustParseAddr("fd00::1"), netip.MustParseAddr("10.96.0.1")}
	if err := f.AddAddresses("kube-ipvs0", in, nil); !errors.Is(err, ErrLinkNotFound) {
		t.Fatalf("AddAddresses on a missing link: %v", err)
	}
	if _, err := f.EnsureDummy("kube-ipvs0"); err != nil {
		t.Fatal(err)
	}
	f.InjectError("AddAddresses", boom)
	if err := f.AddAddresses("kube-ipvs0", in, nil); err != boom || len(f.Addresses("kube-ipvs0")) != 0 {
		t.Fatalf("AddAddresses with a failed round trip: %v, bound %v", err, f.Addresses("kube-ipvs0"))
	}
	f.ResetCounts()
	f.InjectError("AddAddress", boom)
	refused := map[int]error{}
	if err := f.AddAddresses("kube-ipvs0", in, func(i int, err error) { refused[i] = err }); err != nil {
		t.Fatal(err)
	}
	// The first is refused by the injection, the mapped one as invalid; the repeat binds it.
	if len(refused) != 2 || refused[0] != boom || refused[1] == nil {
		t.Errorf("refused %v, want the first (injected) and the second (IPv4-mapped)", refused)
	}
	if got := f.Addresses("kube-ipvs0"); !slices.Equal(sortedUnique(got), addrs("10.96.0.1", "fd00::1")) {
		t.Errorf("bound %v", got)
	}
	if c := f.Count("AddAddress"); c != 4 {
		t.Errorf("AddAddress count %d, want 4 (one per address)", c)
	}
}

// TestFakeDeleteAddresses: each address is unbound as DeleteAddress would (an address not bound
// is no refusal), refusals by index, a failed round trip changes nothing.
func TestFakeDeleteAddresses(t *testing.T) {
	f := NewFake()
	boom := errors.New("boom")
	if _, err := f.EnsureDummy("kube-ipvs0"); err != nil {
		t.Fatal(err)
	}
	if err := f.AddAddresses("kube-ipvs0", addrs("10.96.0.1", "10.96.0.2", "fd00::1"), nil); err != nil {
		t.Fatal(err)
	}
	f.InjectError("DeleteAddresses", boom)
	if err := f.DeleteAddresses("kube-ipvs0", addrs("10.96.0.1"), nil); err != boom || len(f.Addresses("kube-ipvs0")) != 3 {
		t.Fatalf("DeleteAddresses with a failed round trip: %v, bound %v", err, f.Addresses("kube-ipvs0"))
	}
	f.InjectError("DeleteAddress", boom)
	refused := map[int]error{}
	in := addrs("10.96.0.1", "10.96.0.2", "10.96.0.9", "fd00::1")
	if err := f.DeleteAddresses("kube-ipvs0", in, func(i int, err error) { refused[i] = err }); err != nil {
		t.Fatal(err)
	}
	if len(refused) != 1 || refused[0] != boom {
		t.Errorf("refused %v, want only the first (injected); an address not bound is no refusal", refused)
	}
	if got := f.Addresses("kube-ipvs0"); !slices.Equal(got, addrs("10.96.0.1")) {
		t.Errorf("bound after the unbinding %v, want the refused one", got)
	}
	if err := f.DeleteAddresses("eth9", in, nil); !errors.Is(err, ErrLinkNotFound) {
		t.Errorf("DeleteAddresses on a missing link: %v", err)
	}
}

// TestFakeWatchAddresses: the watch is called for each change of a served address on a link
// other than the excluded one, through the Interface and the test helpers, and for nothing
// else; it stops when its context is done.
func TestFakeWatchAddresses(t *testing.T) {
	f := NewFake()
	f.AddLink("eth0", addrs("192.168.1.10")...)
	if _, err := f.EnsureDummy("kube-ipvs0"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	if err := f.WatchAddresses(ctx, "kube-ipvs0", func() { calls++ }); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		name   string
		change func() error
		want   int // calls it makes
	}{
		{"bind to kube-ipvs0", func() error { return f.AddAddress("kube-ipvs0", netip.MustParseAddr("10.96.0.1")) }, 0},
		{"bind a batch to kube-ipvs0", func() error { return f.AddAddresses("kube-ipvs0", addrs("10.96.0.2", "fd00::2"), nil) }, 0},
		{"unbind from kube-ipvs0", func() error { return f.DeleteAddress("kube-ipvs0", netip.MustParseAddr("10.96.0.1")) }, 0},
		{"bind to eth0", func() error { return f.AddAddress("eth0", netip.MustParseAddr("192.168.1.11")) }, 1},
		{"bind it again", func() error { return f.AddAddress("eth0", netip.MustParseAddr("192.168.1.11")) }, 0},
		{"bind a batch to eth0", func() error { return f.AddAddresses("eth0", addrs("192.168.1.12", "192.168.1.13"), nil) }, 2},
		{"unbind from eth0", func() error { return f.DeleteAddress("eth0", netip.MustParseAddr("192.168.1.11")) }, 1},
		{"unbind an address not bound", func() error { return f.DeleteAddress("eth0", netip.MustParseAddr("192.168.1.99")) }, 0},
		{"link-local and loopback", func() error { return f.AddAddresses("eth0", addrs("fe80::1", "127.0.0.2"), nil) }, 0},
		{"a new link with an address", func() error { f.AddLink("eth1", addrs("10.0.0.1")...); return nil }, 1},
		{"a new link without", func() error { f.AddLink("eth2"); return nil }, 0},
		{"SetAddresses", func() error { return f.SetAddresses("eth1", addrs("10.0.0.2")...) }, 1},
		{"SetAddresses to the same", func() error { return f.SetAddresses("eth1", addrs("10.0.0.2")...) }, 0},
		{"delete a link with addresses", func() error { return f.DeleteLink("eth1") }, 1},
		{"delete kube-ipvs0 with addresses", func() error { return f.DeleteLink("kube-ipvs0") }, 0},
		{"a VXLAN link replacing eth0", func() error { f.AddVXLAN("eth0", 0); return nil }, 1},
		{"a change outside", func() error { f.SimulateAddressChange("wlan0"); return nil }, 1},
		{"a change outside on kube-ipvs0", func() error { f.SimulateAddressChange("kube-ipvs0"); return nil }, 0},
	} {
		before := calls
		if err := step.change(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got := calls - before; got != step.want {
			t.Errorf("%s: %d calls, want %d", step.name, got, step.want)
		}
	}
	if c := f.Count("WatchAddresses"); c != 1 || f.Reads() != 0 {
		t.Errorf("WatchAddresses counted %d times, reads %d", c, f.Reads())
	}
	cancel()
	before := calls
	f.SimulateAddressChange("eth0")
	if calls != before {
		t.Error("called after its context was done")
	}
	boom := errors.New("boom")
	f.InjectError("WatchAddresses", boom)
	if err := f.WatchAddresses(context.Background(), "", func() {}); err != boom {
		t.Errorf("injected: %v", err)
	}
}
