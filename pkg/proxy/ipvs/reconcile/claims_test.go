package reconcile

import (
	"net/netip"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/kubernetes/pkg/proxy"

	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/desired"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/internal/fixture"
)

// TestClaimsVirtualServerOwners: two service ports asking for one virtual server get the
// lowest name's wish whatever the order they came in, the other's once the winner leaves, and
// the virtual server is unwanted once both have left. A port that lists a virtual server twice
// owns it once.
func TestClaimsVirtualServerOwners(t *testing.T) {
	k := fixture.Key("10.96.0.1", kipvs.TCP, 80)
	port := func(name string) proxy.ServicePortName {
		return proxy.ServicePortName{NamespacedName: types.NamespacedName{Namespace: "ns", Name: name}, Port: "p"}
	}
	state := func(scheduler string, n int) desired.ServicePortState {
		var st desired.ServicePortState
		for i := 0; i < n; i++ {
			st.VirtualServers = append(st.VirtualServers, desired.VirtualServerState{VirtualServer: kipvs.VirtualServer{Key: k, Scheduler: scheduler}})
		}
		return st
	}
	wants := func(c *Claims, step, scheduler string) {
		t.Helper()
		got, ok := c.virtualServer(k)
		switch {
		case scheduler == "" && ok:
			t.Fatalf("%s: %s still wanted (%q)", step, k, got.VirtualServer.Scheduler)
		case scheduler == "":
		case !ok:
			t.Fatalf("%s: %s not wanted, want %q", step, k, scheduler)
		case got.VirtualServer.Scheduler != scheduler:
			t.Fatalf("%s: %s wanted with %q, want %q", step, k, got.VirtualServer.Scheduler, scheduler)
		}
	}
	for _, order := range [][]string{{"a", "b"}, {"b", "a"}} {
		c := NewClaims()
		for _, name := range order {
			c.Set(port(name), netip.Addr{}, state(name+"-sched", 1), nil)
		}
		wants(c, "both", "a-sched")
		c.Set(port("a"), netip.Addr{}, state("a-sched2", 1), nil)
		wants(c, "a replaced", "a-sched2")
		c.Remove(port("a"))
		wants(c, "a removed", "b-sched")
		c.Remove(port("b"))
		wants(c, "both removed", "")
		if len(c.vs) != 0 {
			t.Fatalf("claims keep %d virtual servers after every owner left", len(c.vs))
		}
	}

	c := NewClaims()
	st := state("x", 2)
	st.VirtualServers[1].VirtualServer.Scheduler = "y"
	c.Set(port("dup"), netip.Addr{}, st, nil)
	if n := len(c.vs[k]); n != 1 {
		t.Fatalf("a port listing %s twice has %d claims on it, want 1", k, n)
	}
	wants(c, "listed twice", "y")
	c.Remove(port("dup"))
	wants(c, "listed twice, removed", "")
}

// TestClaimsClusterIPOwnerWins: when another Service claims a cluster IP's virtual server (an
// externalIP equal to it that got past the guard), the Service whose cluster IP it is keeps it,
// whatever the names and the order.
func TestClaimsClusterIPOwnerWins(t *testing.T) {
	k := fixture.Key("10.96.0.1", kipvs.TCP, 80)
	port := func(ns string) proxy.ServicePortName {
		return proxy.ServicePortName{NamespacedName: types.NamespacedName{Namespace: ns, Name: "svc"}, Port: "p"}
	}
	state := func(scheduler string) desired.ServicePortState {
		return desired.ServicePortState{VirtualServers: []desired.VirtualServerState{{VirtualServer: kipvs.VirtualServer{Key: k, Scheduler: scheduler}}}}
	}
	for _, ownerFirst := range []bool{true, false} {
		c := NewClaims()
		set := []func(){
			func() { c.Set(port("default"), k.Address, state("owner"), nil) },
			func() { c.Set(port("aaa"), netip.MustParseAddr("10.96.5.5"), state("thief"), nil) },
		}
		if !ownerFirst {
			set[0], set[1] = set[1], set[0]
		}
		set[0]()
		set[1]()
		if got, _ := c.virtualServer(k); got.VirtualServer.Scheduler != "owner" {
			t.Errorf("owner first=%v: %s goes to %q, want the cluster IP's own Service", ownerFirst, k, got.VirtualServer.Scheduler)
		}
	}
}
