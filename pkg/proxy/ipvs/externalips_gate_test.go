package ipvs

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/component-base/featuregate"
	"k8s.io/kubernetes/pkg/features"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/objects"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/internal/fixture"
)

// With the AllowServiceExternalIPs feature gate off, upstream serves no externalIP; neither
// do we (no virtual server, entry or binding), and nothing is reported as refused.
func TestExternalIPsNotServedWithGateOff(t *testing.T) {
	setGate(t, features.AllowServiceExternalIPs, false)
	e, rec := policyEnv(t, nil)
	svc := fixture.Service("ext", "10.96.0.50", fixture.ExternalIPs("198.51.100.5"))
	e.start(svc, fixture.Slice(svc, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.1.5", Node: "node-b"}))
	if e.hasVirtualServer(fixture.Key("198.51.100.5", objects.TCP, 80)) || e.bound()["198.51.100.5"] || e.entries("KUBE-EXTERNAL-IP")["198.51.100.5,tcp:80"] {
		t.Errorf("an externalIP is served with AllowServiceExternalIPs off: bound %v", e.bound())
	}
	if !e.hasVirtualServer(fixture.Key("10.96.0.50", objects.TCP, 80)) {
		t.Errorf("the cluster IP should be served")
	}
	if evs := drain(rec); len(evs) != 0 {
		t.Errorf("events %q, want none", evs)
	}
}

func setGate(t *testing.T, gate featuregate.Feature, on bool) {
	t.Helper()
	before := utilfeature.DefaultFeatureGate.Enabled(gate)
	if err := utilfeature.DefaultMutableFeatureGate.SetFromMap(map[string]bool{string(gate): on}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = utilfeature.DefaultMutableFeatureGate.SetFromMap(map[string]bool{string(gate): before}) })
}
