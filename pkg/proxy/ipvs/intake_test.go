package ipvs

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"

	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/internal/fixture"
)

// stallingIPVS holds the first Add after it is armed until released: a sync stalled in its
// kernel I/O, as one at 10k Services is for a long time.
type stallingIPVS struct {
	kipvs.Interface
	armed    atomic.Bool
	entered  chan struct{}
	released chan struct{}
}

func (s *stallingIPVS) Add(adds []kipvs.Addition, refused func(int, error)) error {
	if s.armed.CompareAndSwap(true, false) {
		close(s.entered)
		<-s.released
	}
	return s.Interface.Add(adds, refused)
}

// TestClusterInputsDoNotWaitForASync: a Node's new address, the apiserver's endpoints, the
// service CIDRs and the topology labels are taken while a sync is stalled in the kernel (the
// handlers return), and the next sync applies them: node-b's address stops being served.
func TestClusterInputsDoNotWaitForASync(t *testing.T) {
	var stall *stallingIPVS
	e := newEnv(t, func(_ *kubeproxyconfig.KubeProxyConfiguration, e *env) {
		e.wrapIPVS = func(f *kipvs.Fake) kipvs.Interface {
			stall = &stallingIPVS{Interface: f, entered: make(chan struct{}), released: make(chan struct{})}
			return stall
		}
	})
	ext := fixture.Service("ext", "10.96.0.30", fixture.ExternalIPs(nodeBAddr))
	e.start(ext, fixture.Slice(ext, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.1.5", Node: "node-b"}))
	if !e.hasVirtualServer(nodeBKey) {
		t.Fatalf("the externalIP should be served while no Node lists it")
	}

	// A new Service makes the next sync add a virtual server: it stalls there.
	web := fixture.Service("web", "10.96.0.40")
	e.deliver(web)
	e.deliver(fixture.Slice(web, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.1.6", Node: "node-b"}))
	stall.armed.Store(true)
	syncDone := make(chan error, 1)
	go func() { syncDone <- e.p.syncProxyRules() }()
	<-stall.entered

	handled := make(chan struct{})
	go func() {
		e.p.OnNodeAddresses("node-b", []netip.Addr{fixture.Addr(nodeBAddr)})
		e.p.OnAPIServerEndpoints([]netip.AddrPort{apiEndpoint})
		e.p.OnServiceCIDRsChanged([]string{"10.96.0.0/16"})
		e.p.OnTopologyChange(map[string]string{v1.LabelTopologyZone: "zone-b"})
		close(handled)
	}()
	select {
	case <-handled:
	case <-time.After(30 * time.Second):
		close(stall.released)
		t.Fatalf("the cluster-input handlers waited for the stalled sync")
	}
	close(stall.released)
	if err := <-syncDone; err != nil {
		t.Fatalf("stalled sync: %v", err)
	}
	if !e.hasVirtualServer(fixture.Key("10.96.0.40", kipvs.TCP, 80)) {
		t.Fatalf("the stalled sync did not finish its work")
	}

	e.sync()
	if e.hasVirtualServer(nodeBKey) || e.bound()[nodeBAddr] {
		t.Errorf("node-b's address is still served after the sync that followed its Node update: bound %v", e.bound())
	}
	if e.p.topologyLabels[v1.LabelTopologyZone] != "zone-b" {
		t.Errorf("topology labels %v, want the delivered zone-b", e.p.topologyLabels)
	}
	if !e.p.nodeCtx.APIServerEndpoints[apiEndpoint] {
		t.Errorf("the apiserver's endpoints did not reach the node context")
	}
	if got := e.p.nodeCtx.ServiceCIDRs; len(got) != 1 || got[0] != netip.MustParsePrefix("10.96.0.0/16") {
		t.Errorf("service CIDRs %v, want 10.96.0.0/16", got)
	}
}
