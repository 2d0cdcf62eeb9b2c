package ipvs

import (
	"fmt"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"

	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/internal/fixture"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/reconcile"
)

// TestAdditionsShareRoundTrips: a cold start sends its virtual and real servers in a few
// calls of Add (a round trip per nlmsg.MaxBatch of them in the kernel adapter), not one or two
// calls per virtual server; each addition is still one request.
func TestAdditionsShareRoundTrips(t *testing.T) {
	e := newEnv(t)
	e.start(benchObjects(100)...) // 150 virtual servers with 10 real servers each
	vs, rs := 150, 1500
	if got := len(e.ipvs.VirtualServers()); got != vs {
		t.Fatalf("%d virtual servers in the kernel, want %d", got, vs)
	}
	calls := (vs + rs + reconcile.AdditionsFlushAt - 1) / reconcile.AdditionsFlushAt
	if e.ipvs.Count("Add") != calls || e.ipvs.Count("AddVirtualServer") != vs || e.ipvs.Count("AddRealServer") != rs {
		t.Errorf("kernel calls %v; want %d calls of Add carrying %d virtual and %d real servers", e.ipvs.Counts(), calls, vs, rs)
	}
	e.verifySync()
	if w := e.ipvs.Writes(); w != vs+rs {
		t.Errorf("%d writes after a verification, want %d: the cache missed additions (%s)", w, vs+rs, e.ops())
	}
}

// weightWatch is an IPVS that fails the test when a virtual server that should have a real
// server taking connections is left with none: when the proxier quiesces (weight 0) or
// deletes the last real server of positive weight.
type weightWatch struct {
	*kipvs.Fake
	t     *testing.T
	armed bool
}

func (w *weightWatch) check(vs kipvs.Key, rs kipvs.RealServer, op string) {
	if !w.armed {
		return
	}
	for _, s := range w.Fake.RealServers(vs) {
		if s.Weight > 0 && (s.Address != rs.Address || s.Port != rs.Port) {
			return
		}
	}
	w.t.Errorf("%s of %s left %s with no real server taking connections: %v", op, rs, vs, w.Fake.RealServers(vs))
}

func (w *weightWatch) UpdateRealServer(vs kipvs.Key, rs kipvs.RealServer) error {
	if rs.Weight == 0 {
		w.check(vs, rs, "quiescing")
	}
	return w.Fake.UpdateRealServer(vs, rs)
}

func (w *weightWatch) DeleteRealServer(vs kipvs.Key, rs kipvs.RealServer) error {
	if cur, ok := w.weight(vs, rs); ok && cur > 0 {
		w.check(vs, rs, "deleting")
	}
	return w.Fake.DeleteRealServer(vs, rs)
}

func (w *weightWatch) weight(vs kipvs.Key, rs kipvs.RealServer) (int, bool) {
	for _, s := range w.Fake.RealServers(vs) {
		if s.Address == rs.Address && s.Port == rs.Port {
			return s.Weight, true
		}
	}
	return 0, false
}

// TestReplacedEndpointsNeverLeaveAServiceEmpty: when every endpoint of a Service is replaced
// (a rolling update seen at once), the new real servers are in the kernel before the old ones
// stop taking connections, for TCP (quiesced, then deleted once idle) and UDP (deleted at once).
// Queued additions that waited for the end of the IPVS phase would leave a window in which
// the Service's virtual servers had no real server of positive weight.
func TestReplacedEndpointsNeverLeaveAServiceEmpty(t *testing.T) {
	for _, proto := range []v1.Protocol{v1.ProtocolTCP, v1.ProtocolUDP} {
		t.Run(string(proto), func(t *testing.T) {
			var w *weightWatch
			e := newEnv(t, func(_ *kubeproxyconfig.KubeProxyConfiguration, e *env) {
				e.wrapIPVS = func(f *kipvs.Fake) kipvs.Interface {
					w = &weightWatch{Fake: f, t: t}
					return w
				}
			})
			// Other Services around it, so that additions are queued for several virtual servers.
			var objs []any
			for i := range 5 {
				svc := fixture.Service(fmt.Sprintf("s%d", i), fmt.Sprintf("10.96.1.%d", i+1), fixture.Protocol(proto))
				objs = append(objs, svc, fixture.Slice(svc, v1.IPv4Protocol, fixture.Endpoint{IP: fmt.Sprintf("10.244.9.%d", i+1)}))
			}
			svc := fixture.Service("web", "10.96.0.10", fixture.Protocol(proto), fixture.NodePort(30080))
			old := fixture.Slice(svc, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.1.5"}, fixture.Endpoint{IP: "10.244.2.6"})
			e.start(append(objs, svc, old)...)
			w.armed = true
			replaced := fixture.Slice(svc, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.3.7"}, fixture.Endpoint{IP: "10.244.4.8"})
			e.p.OnEndpointSliceUpdate(old, replaced)
			// And a real server added elsewhere, queued first in the same sync.
			s0 := objs[1].(*discovery.EndpointSlice)
			grown := s0.DeepCopy()
			grown.Endpoints = append(grown.Endpoints, discovery.Endpoint{Addresses: []string{"10.244.8.1"}})
			e.p.OnEndpointSliceUpdate(s0, grown)
			e.sync()
			k := fixture.Key("10.96.0.10", kipvs.Protocol(proto), 80)
			if got := e.realServers(k); got["10.244.3.7:8080"] != 1 || got["10.244.4.8:8080"] != 1 {
				t.Errorf("real servers of %s after the replacement: %v", k, got)
			}
		})
	}
}
