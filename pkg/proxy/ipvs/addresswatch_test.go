package ipvs

import (
	"context"
	"testing"

	v1 "k8s.io/api/core/v1"

	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/internal/fixture"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/reconcile"
)

// TestNewNodeAddressUnboundAtNextSync: an externalIP bound to kube-ipvs0 becomes this node's
// address (added to an interface). The address watch makes the next sync, not the next
// verification, see it: unbound, and served as the node's own address.
func TestNewNodeAddressUnboundAtNextSync(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e.p.watchAddresses(ctx)
	svc := fixture.Service("ext", "10.96.0.95", fixture.ExternalIPs("192.0.2.77"))
	e.start(svc, fixture.Slice(svc, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.1.5", Node: "node-b"}))
	if !e.bound()["192.0.2.77"] {
		t.Fatalf("precondition: the externalIP is bound")
	}
	e.nd.AddLink("eth1", fixture.Addr("192.0.2.77"))
	e.sync()
	if e.bound()["192.0.2.77"] {
		t.Errorf("192.0.2.77 is this node's address now, and still bound to %s", reconcile.DummyDevice)
	}
	if !e.hasVirtualServer(fixture.Key("192.0.2.77", kipvs.TCP, 80)) {
		t.Errorf("the node's own address should still be served through IPVS")
	}
	// Our own bindings do not wake the proxier.
	e.p.addressesChanged.Store(false)
	if err := e.nd.AddAddress(reconcile.DummyDevice, fixture.Addr("10.96.9.9")); err != nil {
		t.Fatal(err)
	}
	if e.p.addressesChanged.Load() {
		t.Errorf("a binding on %s was taken for a change of the node's addresses", reconcile.DummyDevice)
	}
}
