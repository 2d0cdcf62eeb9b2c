package ipvs

import (
	"context"
	"testing"

	v1 "k8s.io/api/core/v1"

	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
)

// TestNewNodeAddressUnboundAtNextSync: an externalIP bound to kube-ipvs0 becomes this node's
// address (added to an interface). The address watch makes the next sync, not the next
// verification, see it: unbound, and served as the node's own address.
func TestNewNodeAddressUnboundAtNextSync(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e.p.watchAddresses(ctx)
	svc := service("ext", "10.96.0.95", externalIPs("192.0.2.77"))
	e.start(svc, slice(svc, v1.IPv4Protocol, ep{ip: "10.244.1.5", node: "node-b"}))
	if !e.bound()["192.0.2.77"] {
		t.Fatalf("precondition: the externalIP is bound")
	}
	e.nd.AddLink("eth1", addr("192.0.2.77"))
	e.sync()
	if e.bound()["192.0.2.77"] {
		t.Errorf("192.0.2.77 is this node's address now, and still bound to %s", DummyDevice)
	}
	if !e.hasVirtualServer(key("192.0.2.77", kipvs.TCP, 80)) {
		t.Errorf("the node's own address should still be served through IPVS")
	}
	// Our own bindings do not wake the proxier.
	e.p.addressesChanged.Store(false)
	if err := e.nd.AddAddress(DummyDevice, addr("10.96.9.9")); err != nil {
		t.Fatal(err)
	}
	if e.p.addressesChanged.Load() {
		t.Errorf("a binding on %s was taken for a change of the node's addresses", DummyDevice)
	}
}
