package ipvs

import (
	"fmt"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/component-base/metrics/testutil"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	"k8s.io/utils/ptr"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipset"
	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/internal/fixture"
)

// TestInvalidEndpointPortDoesNotWedgeSyncs: the apiserver accepts EndpointSlice ports outside
// 1-65535. A local endpoint with such a port gets nothing in the kernel and an Event, and every
// Service created afterwards is still programmed.
func TestInvalidEndpointPortDoesNotWedgeSyncs(t *testing.T) {
	for _, port := range []int32{70000, -1} {
		e, rec := policyEnv(t, nil)
		bad := fixture.Service("bad", "10.96.0.60")
		es := fixture.Slice(bad, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.0.5", Node: fixture.Node}, fixture.Endpoint{IP: "10.244.1.5", Node: "node-b"})
		es.Ports[0].Port = ptr.To(port)
		e.start(bad, es)
		good := fixture.Service("good", "10.96.0.61", fixture.NodePort(30061))
		e.p.OnServiceAdd(good)
		e.p.OnEndpointSliceAdd(fixture.Slice(good, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.0.6", Node: fixture.Node}))
		if err := e.p.syncProxyRules(); err != nil {
			t.Fatalf("port %d: sync failed: %v", port, err)
		}
		if got := e.realServers(fixture.Key("10.96.0.61", kipvs.TCP, 80)); len(got) != 1 {
			t.Errorf("port %d: a Service created after the bad one has real servers %v", port, got)
		}
		if !e.bound()["10.96.0.61"] || !e.entries("KUBE-LOOP-BACK")["10.244.0.6,tcp:8080,10.244.0.6"] {
			t.Errorf("port %d: the good Service's binding or hairpin entry is missing", port)
		}
		if got := e.realServers(fixture.Key("10.96.0.60", kipvs.TCP, 80)); len(got) != 0 {
			t.Errorf("port %d: endpoints with an invalid port became real servers: %v", port, got)
		}
		if evs := strings.Join(drain(rec), "\n"); !strings.Contains(evs, "InvalidEndpoint") {
			t.Errorf("port %d: no InvalidEndpoint event: %q", port, evs)
		}
	}
}

// refusingIPSet stands for a kernel that refuses some entries (a full set): a batch holding
// one fails, as `ipset restore` does, after the lines before it went in.
type refusingIPSet struct {
	*ipset.Fake
	refuse  map[string]bool
	applies int
}

func (r *refusingIPSet) Apply(ops []ipset.Op) error {
	r.applies++
	for i, op := range ops {
		if op.Kind == ipset.Add && r.refuse[op.Entry] {
			if err := r.Fake.Apply(ops[:i]); err != nil {
				return err
			}
			return &refusedError{i + 1, op.Entry}
		}
	}
	return r.Fake.Apply(ops)
}

type refusedError struct {
	line  int
	entry string
}

func (e *refusedError) Error() string {
	return fmt.Sprintf("ipset restore: Error in line %d: Hash is full, cannot add %s", e.line, e.entry)
}

// TestRefusedIPSetEntryIsIsolated: one entry the kernel refuses keeps neither the other
// entries nor the rules and bindings after it out; the refusal is counted.
func TestRefusedIPSetEntryIsIsolated(t *testing.T) {
	RegisterMetrics()
	var fake *refusingIPSet
	e := newEnv(t, func(_ *kubeproxyconfig.KubeProxyConfiguration, e *env) {
		e.wrapIPSet = func(f *ipset.Fake) ipset.Interface {
			fake = &refusingIPSet{Fake: f, refuse: map[string]bool{"10.96.0.71,tcp:80": true}}
			return fake
		}
	})
	var objs []any
	for i, ip := range []string{"10.96.0.70", "10.96.0.71", "10.96.0.72", "10.96.0.73"} {
		svc := fixture.Service("s"+string(rune('a'+i)), ip)
		objs = append(objs, svc, fixture.Slice(svc, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.1.5", Node: "node-b"}))
	}
	e.start(objs...)
	for _, ip := range []string{"10.96.0.70", "10.96.0.72", "10.96.0.73"} {
		if !e.entries("KUBE-CLUSTER-IP")[ip+",tcp:80"] {
			t.Errorf("entry %s,tcp:80 missing: one refused entry kept the others out", ip)
		}
	}
	if !e.bound()["10.96.0.71"] || !e.bound()["10.96.0.73"] {
		t.Errorf("bindings after the refused entry are missing: %v", e.bound())
	}
	if e.entries("KUBE-CLUSTER-IP")["10.96.0.71,tcp:80"] {
		t.Fatalf("the refusing fake let the entry in")
	}
	if v, _ := testutil.GetGaugeMetricValue(ipsetEntriesRefused.WithLabelValues("IPv4")); v != 1 {
		t.Errorf("ipset_entries_refused = %v, want 1", v)
	}
	// The kernel takes it later (room in the set): the next verification writes it.
	delete(fake.refuse, "10.96.0.71,tcp:80")
	e.verifySync()
	if !e.entries("KUBE-CLUSTER-IP")["10.96.0.71,tcp:80"] {
		t.Errorf("the once refused entry is not written at the next verification")
	}
}
