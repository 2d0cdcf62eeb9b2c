package ipvs

import (
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/internal/fixture"
)

// TestKernelMeterAgreesWithTheFakes: the counts the proxier reports (kernel_operations_total,
// the sync's log line) are the fakes' own counts, over a cold start, a change, a verification
// and a removal: every operation a sync makes goes through the meter.
func TestKernelMeterAgreesWithTheFakes(t *testing.T) {
	e := newEnv(t)
	web := fixture.Service("web", "10.96.0.10", fixture.NodePort(30080))
	step := func(name string, run func()) {
		t.Helper()
		e.resetCounts()
		before := e.p.meter.counts()
		run()
		got := e.p.meter.counts()
		if r, w := got.reads-before.reads, got.writes-before.writes; r != e.reads() || w != e.writes() {
			t.Errorf("%s: the meter counted %d reads and %d writes, the fakes saw %d and %d: %s", name, r, w, e.reads(), e.writes(), e.ops())
		}
	}
	step("cold start", func() {
		e.start(web, fixture.Slice(web, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.1.5", Node: "node-b"}))
	})
	step("change", func() {
		e.p.OnEndpointSliceUpdate(nil, fixture.Slice(web, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.1.6", Node: "node-b"}))
		e.sync()
	})
	step("verification", e.verifySync)
	step("removal", func() {
		e.p.OnServiceDelete(web)
		e.sync()
	})
	if e.p.meter.counts().writes == 0 {
		t.Errorf("nothing counted")
	}
}
