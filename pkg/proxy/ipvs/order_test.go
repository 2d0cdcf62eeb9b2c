package ipvs

import (
	"errors"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/internal/fixture"
)

// TestAddressIsTheSwitch: a Service's address is bound only once its virtual and real servers
// and ipset entries are in the kernel, and unbound before they are removed. A packet to a
// local address that IPVS does not know yet gets a reset from the node; a packet to an
// address that is not local yet leaves by the node's routes, as before the Service existed.
func TestAddressIsTheSwitch(t *testing.T) {
	injected := errors.New("injected")
	for _, tc := range []struct {
		name   string
		inject func(e *env)
	}{
		{"a real server write failed", func(e *env) { e.ipvs.InjectError("AddRealServer", injected) }},
		{"a round trip of additions failed", func(e *env) { e.ipvs.InjectError("Add", injected) }},
		{"a virtual server write failed", func(e *env) { e.ipvs.InjectError("AddVirtualServer", injected) }},
		{"the ipset restore failed", func(e *env) { e.ipset.InjectError("Apply", injected) }},
		{"the binding was refused", func(e *env) { e.nd.InjectError("AddAddress", injected) }},
		{"the round trip of bindings failed", func(e *env) { e.nd.InjectError("AddAddresses", injected) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.start()
			svc, sl := webService()
			e.deliver(svc)
			e.deliver(sl)
			tc.inject(e)
			if err := e.p.syncProxyRules(); !errors.Is(err, injected) {
				t.Fatalf("sync with a failing write: %v, want the injected error", err)
			}
			if e.bound()["10.96.0.10"] {
				t.Errorf("10.96.0.10 was bound while its Service was incomplete in the kernel (%s)", e.ops())
			}
			e.sync() // the retry
			if !e.bound()["10.96.0.10"] || len(e.realServers(webCluster)) != 2 {
				t.Errorf("after the retry: bound %v, real servers %v; want 10.96.0.10 bound with 2", e.bound(), e.realServers(webCluster))
			}
		})
	}

	t.Run("a removed Service is unbound before its virtual server goes", func(t *testing.T) {
		e := newEnv(t)
		svc, sl := webService()
		e.start(svc, sl)
		e.p.serviceChanges.Update(svc, nil)
		e.p.endpointsChanges.EndpointSliceUpdate(sl, true)
		e.ipvs.InjectError("DeleteVirtualServer", injected)
		if err := e.p.syncProxyRules(); !errors.Is(err, injected) {
			t.Fatalf("sync with a failing removal: %v, want the injected error", err)
		}
		if e.bound()["10.96.0.10"] {
			t.Errorf("10.96.0.10 still bound after its Service was removed and the virtual server's removal failed")
		}
		if !e.hasVirtualServer(webCluster) {
			t.Fatalf("the injected failure did not stop the removal (%s)", e.ops())
		}
		e.sync()
		if e.hasVirtualServer(webCluster) {
			t.Errorf("the retry left the virtual server %s", webCluster)
		}
	})
}

// TestRefusedBindingLeavesTheOthersBound: the kernel refusing one address does not keep the
// other Services' addresses from being bound, and the retry binds only the refused one.
func TestRefusedBindingLeavesTheOthersBound(t *testing.T) {
	e := newEnv(t)
	e.start()
	web, webSlice := webService()
	api := fixture.Service("api", "10.96.0.20")
	for _, o := range []any{web, webSlice, api, fixture.Slice(api, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.5.5"})} {
		e.deliver(o)
	}
	e.nd.InjectError("AddAddress", errors.New("injected"))
	if err := e.p.syncProxyRules(); err == nil {
		t.Fatal("the sync should report the refused binding")
	}
	if n := len(e.bound()); n != 1 {
		t.Errorf("bound %v after one refusal, want the other address", e.bound())
	}
	e.nd.ResetCounts()
	e.sync()
	if !e.bound()["10.96.0.10"] || !e.bound()["10.96.0.20"] {
		t.Errorf("after the retry: bound %v", e.bound())
	}
	if c := e.nd.Count("AddAddress"); c != 1 {
		t.Errorf("the retry bound %d addresses, want only the refused one", c)
	}
}

// TestRefusedUnbindingIsRetried: when the kernel refuses to unbind a removed Service's
// address, the sync fails, the other removed Service's address is unbound all the same, and
// the retry unbinds only the refused one.
func TestRefusedUnbindingIsRetried(t *testing.T) {
	e := newEnv(t)
	web, webSlice := webService()
	api := fixture.Service("api", "10.96.0.20")
	apiSlice := fixture.Slice(api, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.5.5"})
	e.start(web, webSlice, api, apiSlice)
	e.p.OnServiceDelete(web)
	e.p.OnServiceDelete(api)
	e.nd.InjectError("DeleteAddress", errors.New("injected"))
	if err := e.p.syncProxyRules(); err == nil {
		t.Fatal("the sync should report the refused unbinding")
	}
	if n := len(e.bound()); n != 1 {
		t.Errorf("bound %v after one refused unbinding, want only the refused address", e.bound())
	}
	e.nd.ResetCounts()
	e.sync()
	if len(e.bound()) != 0 {
		t.Errorf("after the retry: bound %v", e.bound())
	}
	if c := e.nd.Count("DeleteAddress"); c != 1 {
		t.Errorf("the retry unbound %d addresses, want only the refused one", c)
	}
}
