//go:build lab

package ipvs

import (
	"net"
	"net/netip"
	"testing"

	libipvs "github.com/moby/ipvs"
	"golang.org/x/sys/unix"
)

// BenchmarkRealServerRequests compares this adapter's requests with moby/ipvs's (which it used
// before) on the lab kernel, in one run: an add and a delete of a real server per iteration,
// ten adds one request each against one batch, and the dump of a virtual server's 50 real
// servers (the verification's read). Run with
//
//	go test -tags lab -exec "$PWD/hack/lab/run-in-guest.sh" -run '^$' -bench RealServerRequests -benchmem ./pkg/kernel/ipvs/
func BenchmarkRealServerRequests(b *testing.B) {
	n := labNetlink(b)
	vs := VirtualServer{Key: Key{Address: netip.MustParseAddr("10.96.0.1"), Protocol: TCP, Port: 80}, Scheduler: "rr"}
	if err := n.AddVirtualServer(vs); err != nil {
		b.Fatal(err)
	}
	for i := range 50 {
		if err := n.AddRealServer(vs.Key, RealServer{Address: netip.AddrFrom4([4]byte{10, 244, 1, byte(i)}), Port: 8080, Weight: 1}); err != nil {
			b.Fatal(err)
		}
	}
	rs := RealServer{Address: netip.MustParseAddr("10.244.2.1"), Port: 8080, Weight: 1}
	h, err := libipvs.New("") // in the namespace labNetlink entered
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(h.Close)
	mSvc := &libipvs.Service{Address: net.IP{10, 96, 0, 1}, Protocol: unix.IPPROTO_TCP, Port: 80,
		AddressFamily: unix.AF_INET, Netmask: 0xffffffff, SchedName: "rr"}
	mDst := &libipvs.Destination{Address: net.IP{10, 244, 2, 1}, Port: 8080, Weight: 1, AddressFamily: unix.AF_INET}

	b.Run("write/moby", func(b *testing.B) {
		for b.Loop() {
			if err := h.NewDestination(mSvc, mDst); err != nil {
				b.Fatal(err)
			}
			if err := h.DelDestination(mSvc, mDst); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("write/ours", func(b *testing.B) {
		for b.Loop() {
			if err := n.AddRealServer(vs.Key, rs); err != nil {
				b.Fatal(err)
			}
			if err := n.DeleteRealServer(vs.Key, rs); err != nil {
				b.Fatal(err)
			}
		}
	})
	// A cold start's shape: ten real servers added to a virtual server, one request each or in
	// one batch (then deleted one by one, the same in both).
	var ten []RealServer
	for i := range 10 {
		ten = append(ten, RealServer{Address: netip.AddrFrom4([4]byte{10, 244, 3, byte(i)}), Port: 8080, Weight: 1})
	}
	var tenAdds []Addition
	for _, rs := range ten {
		tenAdds = append(tenAdds, RealServerAddition(vs.Key, rs))
	}
	del := func(b *testing.B) {
		for _, rs := range ten {
			if err := n.DeleteRealServer(vs.Key, rs); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("add10/single", func(b *testing.B) {
		for b.Loop() {
			for _, rs := range ten {
				if err := n.AddRealServer(vs.Key, rs); err != nil {
					b.Fatal(err)
				}
			}
			del(b)
		}
	})
	b.Run("add10/batch", func(b *testing.B) {
		for b.Loop() {
			if err := n.Add(tenAdds, func(_ int, err error) { b.Fatal(err) }); err != nil {
				b.Fatal(err)
			}
			del(b)
		}
	})
	b.Run("list50/moby", func(b *testing.B) {
		for b.Loop() {
			if d, err := h.GetDestinations(mSvc); err != nil || len(d) != 50 {
				b.Fatal(len(d), err)
			}
		}
	})
	b.Run("list50/ours", func(b *testing.B) {
		for b.Loop() {
			if d, err := n.ListRealServers(vs.Key); err != nil || len(d) != 50 {
				b.Fatal(len(d), err)
			}
		}
	})
}
