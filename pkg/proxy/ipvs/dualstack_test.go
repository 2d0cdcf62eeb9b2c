package ipvs

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"

	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/internal/fixture"
)

// meetingIPVS holds a proxier's first read of the IPVS table, once armed, until the other
// proxier of the pair has made its own: both first syncs must be running at the same time.
// A proxier left waiting gives up after giveUpIn (so a failing test ends) and records it.
type meetingIPVS struct {
	kipvs.Interface
	armed    *atomic.Bool
	once     sync.Once
	here     chan struct{} // closed by this proxier's first read
	there    chan struct{} // closed by the other's
	gaveUp   atomic.Bool
	giveUpIn time.Duration
}

func (m *meetingIPVS) ListVirtualServers() ([]kipvs.VirtualServer, error) {
	if m.armed.Load() {
		m.once.Do(func() {
			close(m.here)
			select {
			case <-m.there:
			case <-time.After(m.giveUpIn):
				m.gaveUp.Store(true)
			}
		})
	}
	return m.Interface.ListVirtualServers()
}

// TestDualStackFirstSyncsRunTogether: the second family's first sync does not wait for the
// whole of the first family's (upstream's metaproxier runs them one after the other).
func TestDualStackFirstSyncsRunTogether(t *testing.T) {
	var armed atomic.Bool
	a, b := make(chan struct{}), make(chan struct{})
	var meets []*meetingIPVS
	meet := func(here, there chan struct{}) func(*kubeproxyconfig.KubeProxyConfiguration, *env) {
		return func(_ *kubeproxyconfig.KubeProxyConfiguration, e *env) {
			e.wrapIPVS = func(f *kipvs.Fake) kipvs.Interface {
				m := &meetingIPVS{Interface: f, armed: &armed, here: here, there: there, giveUpIn: 10 * time.Second}
				meets = append(meets, m)
				return m
			}
		}
	}
	// Two IPv4 proxiers stand for the two families: the wrapper only calls them.
	first, second := newEnv(t, meet(a, b)), newEnv(t, meet(b, a))
	svc := fixture.Service("web", "10.96.0.10")
	for _, e := range []*env{first, second} {
		e.deliver(svc)
		e.deliver(fixture.Slice(svc, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.1.5", Node: "node-b"}))
	}
	d := newDualStackProxier(first.p, second.p)
	armed.Store(true)
	d.OnServiceSynced()
	d.OnEndpointSlicesSynced()

	for i, m := range meets {
		if m.gaveUp.Load() {
			t.Errorf("family %d: its first sync ran alone, the other family's started only after it", i)
		}
	}
	for i, e := range []*env{first, second} {
		if !e.hasVirtualServer(fixture.Key("10.96.0.10", kipvs.TCP, 80)) {
			t.Errorf("family %d: no virtual server after the synced signals: %s", i, e.ops())
		}
	}
}
