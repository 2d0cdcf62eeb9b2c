package ipvs

import (
	"fmt"
	"testing"

	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/internal/fixture"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/reconcile"
)

// TestWholeTableReadsPerVerification: a node with up to virtualServersPerTableRead virtual
// servers lists every virtual server and address at every periodic verification, and every
// ipset entry every 8th; a larger one does both tableWindows times less often. An untouched
// kernel costs no write either way.
func TestWholeTableReadsPerVerification(t *testing.T) {
	if testing.Short() {
		t.Skip("builds more than 2048 services")
	}
	for _, tc := range []struct {
		services, verifications, wantTableReads, wantEntryLists int
	}{
		{services: 3, verifications: 32, wantTableReads: 32, wantEntryLists: 4},
		{services: reconcile.VirtualServersPerTableRead, verifications: 32, wantTableReads: 32, wantEntryLists: 4},
		{services: reconcile.VirtualServersPerTableRead + 1, verifications: 32, wantTableReads: 16, wantEntryLists: 2},
	} {
		t.Run(fmt.Sprint(tc.services), func(t *testing.T) {
			e := manyServicesEnv(t, tc.services)
			e.resetCounts()
			for i := 0; i < tc.verifications; i++ {
				e.verifySync()
			}
			if got := e.ipvs.Count("ListVirtualServers"); got != tc.wantTableReads {
				t.Errorf("%d verifications listed the virtual servers %d times, want %d", tc.verifications, got, tc.wantTableReads)
			}
			if got := e.nd.Count("ListAddresses"); got != tc.wantTableReads {
				t.Errorf("%d verifications listed kube-ipvs0's addresses %d times, want %d", tc.verifications, got, tc.wantTableReads)
			}
			if got := e.ipset.Count("List"); got != tc.wantEntryLists {
				t.Errorf("%d verifications listed every ipset entry %d times, want %d", tc.verifications, got, tc.wantEntryLists)
			}
			if w := e.writes(); w != 0 {
				t.Errorf("verifications of an untouched kernel made %d writes: %s", w, e.ops())
			}
		})
	}
}

// TestLargeTableTamperingIsRepaired: between whole-table reads, a node with more than
// virtualServersPerTableRead virtual servers still repairs what is removed by hand: a virtual
// server or real server within its real-server windows (a difference there reads the whole
// table at once), and an address within tableWindows periods.
func TestLargeTableTamperingIsRepaired(t *testing.T) {
	if testing.Short() {
		t.Skip("builds more than 2048 services")
	}
	n := reconcile.VirtualServersPerTableRead + 1 // a whole-table read every 2nd period, 8 RS windows
	// A Service whose real servers are read only between whole-table reads (an odd window;
	// period p reads window p mod 8 and the whole table when p is even): a real server removed
	// there is found only by comparing that window with the cache.
	var k kipvs.Key
	var rs kipvs.RealServer
	for i := 0; i < n; i++ {
		k = fixture.Key(fmt.Sprintf("10.96.%d.%d", i/250, i%250+1), kipvs.TCP, 80)
		rs = kipvs.RealServer{Address: fixture.Addr(fmt.Sprintf("10.244.%d.%d", i/250, i%250+1)), Port: 8080, Weight: 1}
		if reconcile.WindowOf(k, reconcile.RSWindows(n))%2 == 1 {
			break
		}
	}
	cases := map[string]struct {
		tamper func(e *env)
		within uint32
	}{
		"virtual server deleted": {func(e *env) { _ = e.ipvs.DeleteVirtualServer(k) }, reconcile.RSWindows(n)},
		"real server deleted":    {func(e *env) { _ = e.ipvs.DeleteRealServer(k, rs) }, reconcile.RSWindows(n)},
		"address deleted":        {func(e *env) { _ = e.nd.DeleteAddress(reconcile.DummyDevice, k.Address) }, reconcile.TableWindows(n)},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e := manyServicesEnv(t, n)
			if got := e.realServers(k); len(got) != 1 {
				t.Fatalf("real servers of %s: %v, want one (the test's key is wrong)", k, got)
			}
			before := snapshot(e)
			tc.tamper(e)
			if snapshot(e) == before {
				t.Fatalf("tampering changed nothing; the test is void")
			}
			periods := uint32(0)
			for ; periods < tc.within && snapshot(e) != before; periods++ {
				e.verifySync()
			}
			if snapshot(e) != before {
				t.Errorf("not repaired within %d verifications", tc.within)
			} else {
				t.Logf("repaired after %d verifications", periods)
			}
		})
	}
}
