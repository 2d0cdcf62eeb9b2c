package ipvs

import (
	"testing"

	v1 "k8s.io/api/core/v1"

	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/internal/fixture"
)

// A change of this node's zone re-picks the real servers of topology-aware Services at the next
// sync, with no endpoint change and no verification in between.
func TestZoneChangeRepicksRealServers(t *testing.T) {
	e := newEnv(t)
	svc := fixture.Service("zonal", "10.96.0.70")
	es := fixture.Slice(svc, v1.IPv4Protocol,
		fixture.Endpoint{IP: "10.244.1.1", Node: "node-b", Zones: []string{"zone-a"}},
		fixture.Endpoint{IP: "10.244.2.1", Node: "node-c", Zones: []string{"zone-b"}})
	e.p.OnTopologyChange(map[string]string{v1.LabelTopologyZone: "zone-a"})
	e.start(svc, es)
	k := fixture.Key("10.96.0.70", kipvs.TCP, 80)
	if got := e.realServers(k); len(got) != 1 || got["10.244.1.1:8080"] != 1 {
		t.Fatalf("zone-a: real servers %v, want only 10.244.1.1:8080", got)
	}
	e.p.OnTopologyChange(map[string]string{v1.LabelTopologyZone: "zone-b"})
	e.sync()
	if got := e.realServers(k); len(got) != 1 || got["10.244.2.1:8080"] != 1 {
		t.Errorf("after the zone changed to zone-b: real servers %v, want only 10.244.2.1:8080", got)
	}
	// The labels go (the Node lost its zone): every endpoint again.
	e.p.OnTopologyChange(nil)
	e.sync()
	if got := e.realServers(k); len(got) != 2 {
		t.Errorf("without a zone: real servers %v, want both", got)
	}
}
