package ipvs

import (
	"errors"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	key4 = Key{Address: netip.MustParseAddr("10.0.0.1"), Protocol: TCP, Port: 80}
	key6 = Key{Address: netip.MustParseAddr("2001:db8::1"), Protocol: UDP, Port: 53}
	rs4  = RealServer{Address: netip.MustParseAddr("10.1.0.1"), Port: 8080, Weight: 1}
)

func TestFakeSemantics(t *testing.T) {
	vs4 := VirtualServer{Key: key4, Scheduler: "rr"}
	tests := []struct {
		name    string
		setup   func(f *Fake)
		op      func(f *Fake) error
		wantErr error // matched with errors.Is; nil means success
	}{
		{"add vs", nil, func(f *Fake) error { return f.AddVirtualServer(vs4) }, nil},
		{"add existing vs", addVS(vs4), func(f *Fake) error { return f.AddVirtualServer(vs4) }, syscall.EEXIST},
		{"add vs unknown scheduler", nil, func(f *Fake) error { return f.AddVirtualServer(VirtualServer{Key: key4, Scheduler: "xx"}) }, syscall.ENOENT},
		{"update missing vs", nil, func(f *Fake) error { return f.UpdateVirtualServer(vs4) }, syscall.ESRCH},
		{"delete missing vs", nil, func(f *Fake) error { return f.DeleteVirtualServer(key4) }, syscall.ESRCH},
		{"add rs on missing vs", nil, func(f *Fake) error { return f.AddRealServer(key4, rs4) }, syscall.ESRCH},
		{"add rs", addVS(vs4), func(f *Fake) error { return f.AddRealServer(key4, rs4) }, nil},
		{"add existing rs", addVS(vs4, rs4), func(f *Fake) error { return f.AddRealServer(key4, rs4) }, syscall.EEXIST},
		{"update missing rs", addVS(vs4), func(f *Fake) error { return f.UpdateRealServer(key4, rs4) }, syscall.ENOENT},
		{"delete missing rs", addVS(vs4), func(f *Fake) error { return f.DeleteRealServer(key4, rs4) }, syscall.ENOENT},
		{"negative weight", addVS(vs4), func(f *Fake) error {
			return f.AddRealServer(key4, RealServer{Address: rs4.Address, Port: 1, Weight: -1})
		}, syscall.ERANGE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFake()
			if tt.setup != nil {
				tt.setup(f)
			}
			err := tt.op(f)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func addVS(vs VirtualServer, rss ...RealServer) func(*Fake) {
	return func(f *Fake) {
		if err := f.AddVirtualServer(vs); err != nil {
			panic(err)
		}
		for _, rs := range rss {
			if err := f.AddRealServer(vs.Key, rs); err != nil {
				panic(err)
			}
		}
	}
}

func TestFakeStateAndCounts(t *testing.T) {
	f := NewFake()
	vs6 := VirtualServer{Key: key6, Scheduler: "mh", Flags: FlagSchedSH1 | FlagHashed}
	addVS(VirtualServer{Key: key4, Scheduler: "rr"}, rs4)(f)
	addVS(vs6)(f)
	f.ResetCounts()

	got, err := f.ListVirtualServers()
	if err != nil {
		t.Fatal(err)
	}
	vs6.Flags = FlagSchedSH1 // the kernel-set hashed flag is never reported
	if len(got) != 2 || got[0].Key != key4 || got[1] != vs6 {
		t.Fatalf("ListVirtualServers = %+v", got)
	}
	if err := f.SetConnections(key4, netip.AddrPortFrom(rs4.Address, rs4.Port), 2, 5); err != nil {
		t.Fatal(err)
	}
	rss, err := f.ListRealServers(key4)
	if err != nil || len(rss) != 1 || rss[0] != (RealServerStatus{rs4, 2, 5}) {
		t.Fatalf("ListRealServers = %+v, %v", rss, err)
	}
	if rss, err := f.ListRealServers(withPort(key6, 1)); err != nil || len(rss) != 0 {
		t.Errorf("ListRealServers of missing vs = %v, %v; want empty, nil", rss, err)
	}
	if err := f.UpdateRealServer(key4, RealServer{Address: rs4.Address, Port: rs4.Port, Weight: 0}); err != nil {
		t.Fatal(err)
	}
	if w := f.RealServers(key4)[0]; w.Weight != 0 || w.ActiveConnections != 2 {
		t.Errorf("after weight update: %+v", w)
	}
	// Deleting the virtual server deletes its real servers: re-adding it finds none.
	if err := f.DeleteVirtualServer(key4); err != nil {
		t.Fatal(err)
	}
	addVS(VirtualServer{Key: key4, Scheduler: "rr"})(f)
	if n := len(f.RealServers(key4)); n != 0 {
		t.Errorf("real servers survived their virtual server: %d", n)
	}
	if r, w := f.Reads(), f.Writes(); r != 3 || w != 3 {
		t.Errorf("reads, writes = %d, %d; want 3, 3", r, w)
	}
	if c := f.Count("ListRealServers"); c != 2 {
		t.Errorf("ListRealServers count = %d", c)
	}
	if err := f.Flush(); err != nil || len(f.VirtualServers()) != 0 {
		t.Errorf("Flush: %v, left %v", err, f.VirtualServers())
	}
}

func withPort(k Key, p uint16) Key { k.Port = p; return k }

func TestFakeInjectedError(t *testing.T) {
	f := NewFake()
	boom := errors.New("boom")
	f.InjectError("AddVirtualServer", boom)
	vs := VirtualServer{Key: key4, Scheduler: "rr"}
	if err := f.AddVirtualServer(vs); err != boom {
		t.Fatalf("first call: %v, want injected error", err)
	}
	if len(f.VirtualServers()) != 0 {
		t.Fatal("injected failure changed state")
	}
	if err := f.AddVirtualServer(vs); err != nil {
		t.Fatalf("second call: %v", err)
	}
	if f.Count("AddVirtualServer") != 2 {
		t.Errorf("count = %d, want 2 (failed calls count too)", f.Count("AddVirtualServer"))
	}
}

// TestFakeAdd: Add answers each addition as its single request would, in order (a real server
// after its virtual server in the same call finds it), and an error injected for "Add" fails
// the whole call before anything changes.
func TestFakeAdd(t *testing.T) {
	f := NewFake()
	vs := VirtualServer{Key: key4, Scheduler: "rr"}
	other := withPort(key4, 81)
	adds := []Addition{
		RealServerAddition(key4, rs4), // before its virtual server: ESRCH
		VirtualServerAddition(vs),
		RealServerAddition(key4, rs4),
		RealServerAddition(key4, rs4),                                     // again: EEXIST
		VirtualServerAddition(VirtualServer{Key: other, Scheduler: "xx"}), // ENOENT
		RealServerAddition(other, rs4),                                    // ESRCH
	}
	boom := errors.New("boom")
	f.InjectError("Add", boom)
	if err := f.Add(adds, nil); err != boom {
		t.Fatalf("Add with an injected error: %v", err)
	}
	if len(f.VirtualServers()) != 0 || f.Writes() != 0 {
		t.Fatalf("a failed round trip changed state or counted writes: %v, %d", f.VirtualServers(), f.Writes())
	}
	refused := map[int]error{}
	if err := f.Add(adds, func(i int, err error) { refused[i] = err }); err != nil {
		t.Fatal(err)
	}
	want := map[int]syscall.Errno{0: syscall.ESRCH, 3: syscall.EEXIST, 4: syscall.ENOENT, 5: syscall.ESRCH}
	if len(refused) != len(want) {
		t.Errorf("refused %v, want %v", refused, want)
	}
	for i, e := range want {
		if !errors.Is(refused[i], e) {
			t.Errorf("addition %d (%s): %v, want %v", i, adds[i], refused[i], e)
		}
	}
	if got := f.RealServers(key4); len(got) != 1 || got[0].RealServer != rs4 {
		t.Errorf("real servers %v, want %v", got, rs4)
	}
	if f.Count("AddVirtualServer") != 2 || f.Count("AddRealServer") != 4 || f.Count("Add") != 2 {
		t.Errorf("counts %v: each addition counts under its own method", f.Counts())
	}
}

func TestFakeTimeouts(t *testing.T) {
	f := NewFake()
	if err := f.SetTimeouts(0, 30*time.Second, 0); err != nil {
		t.Fatal(err)
	}
	if tcp, fin, udp := f.Timeouts(); tcp != 900*time.Second || fin != 30*time.Second || udp != 300*time.Second {
		t.Errorf("timeouts = %v %v %v", tcp, fin, udp)
	}
}

func TestFakeConcurrent(t *testing.T) {
	f := NewFake()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			k := Key{Address: netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), Protocol: TCP, Port: 80}
			_ = f.AddVirtualServer(VirtualServer{Key: k, Scheduler: "rr"})
			_, _ = f.ListVirtualServers()
		})
	}
	wg.Wait()
	if n := len(f.VirtualServers()); n != 20 {
		t.Errorf("%d virtual servers, want 20", n)
	}
}
