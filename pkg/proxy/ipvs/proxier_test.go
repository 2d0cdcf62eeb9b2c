package ipvs

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	utiliptables "k8s.io/kubernetes/pkg/util/iptables"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipset"
	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/desired"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/internal/fixture"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/reconcile"
)

func webService() (*v1.Service, *discovery.EndpointSlice) {
	svc := fixture.Service("web", "10.96.0.10", fixture.NodePort(30080))
	return svc, fixture.Slice(svc, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.1.5", Node: "node-b"}, fixture.Endpoint{IP: "10.244.2.6", Node: fixture.Node})
}

var (
	webCluster  = fixture.Key("10.96.0.10", kipvs.TCP, 80)
	webNodePort = fixture.Key("192.168.0.10", kipvs.TCP, 30080)
)

// TestFirstSyncProgramsTheKernel: a ClusterIP+NodePort service with two endpoints ends up as
// virtual servers with real servers, a binding, ipset entries and the iptables chains.
func TestFirstSyncProgramsTheKernel(t *testing.T) {
	e := newEnv(t)
	svc, sl := webService()
	e.start(svc, sl)

	want := map[string]int{"10.244.1.5:8080": 1, "10.244.2.6:8080": 1}
	for _, k := range []kipvs.Key{webCluster, webNodePort} {
		if got := e.realServers(k); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("real servers of %s = %v, want %v", k, got, want)
		}
	}
	if !e.bound()["10.96.0.10"] || e.bound()["192.168.0.10"] {
		t.Errorf("kube-ipvs0 holds %v; want the cluster IP and not the node IP", e.bound())
	}
	if !e.entries("KUBE-CLUSTER-IP")["10.96.0.10,tcp:80"] || !e.entries("KUBE-NODE-PORT-TCP")["30080"] {
		t.Errorf("ipsets: cluster %v nodeport %v", e.entries("KUBE-CLUSTER-IP"), e.entries("KUBE-NODE-PORT-TCP"))
	}
	if len(e.ipset.Sets()) != 17 {
		t.Errorf("%d sets created, want upstream's 17", len(e.ipset.Sets()))
	}
	for _, j := range desired.JumpRules() {
		var saved bytes.Buffer
		_ = e.ipt.FakeIPTables.SaveInto(utiliptables.Table(j.Table), &saved)
		if len(desired.MissingJumps(saved.Bytes(), j.Table)) > 0 {
			t.Errorf("jump %s -> %s missing from %s:\n%s", j.SourceChain, j.Chain, j.Table, saved.String())
		}
	}
}

// TestSyncWithNoChangesWritesNothing: steady state costs no kernel write, verification or not.
func TestSyncWithNoChangesWritesNothing(t *testing.T) {
	e := newEnv(t)
	svc, sl := webService()
	e.start(svc, sl)
	e.resetCounts()
	e.sync()
	if w := e.writes(); w != 0 {
		t.Errorf("a sync without changes made %d kernel writes: %s", w, e.ops())
	}
	if r := e.reads(); r != 0 {
		t.Errorf("a sync without changes (not a verification) made %d reads: %s", r, e.ops())
	}
	e.resetCounts()
	e.verifySync()
	if w := e.writes(); w != 0 {
		t.Errorf("a verification of an untouched kernel made %d writes: %s", w, e.ops())
	}
}

// endpointChangeWrites builds n services, then counts the kernel writes of one endpoint added
// to one of them.
func endpointChangeWrites(t *testing.T, n int) (writes, reads int) {
	e := manyServicesEnv(t, n)
	target := fixture.Service("s7", "10.96.0.8")
	e.p.OnEndpointSliceUpdate(nil, fixture.Slice(target, v1.IPv4Protocol,
		fixture.Endpoint{IP: "10.244.0.8", Node: "node-b"}, fixture.Endpoint{IP: "10.244.99.1", Node: "node-b"}))
	e.resetCounts()
	e.sync()
	if got := e.realServers(fixture.Key("10.96.0.8", kipvs.TCP, 80)); len(got) != 2 {
		t.Fatalf("endpoint not programmed: %v", got)
	}
	return e.writes(), e.reads()
}

// TestOneEndpointChangeCostsTheSameAtAnyScale: one endpoint change makes the same, constant,
// number of kernel operations with 10 services and with 10,000.
func TestOneEndpointChangeCostsTheSameAtAnyScale(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 10,000 services")
	}
	w10, r10 := endpointChangeWrites(t, 10)
	w10k, r10k := endpointChangeWrites(t, 10000)
	if w10 != 1 || w10k != w10 || r10k != r10 {
		t.Errorf("one endpoint added: %d writes/%d reads with 10 services, %d/%d with 10,000; want 1 write each and equal reads", w10, r10, w10k, r10k)
	}
}

// iptablesTampering changes our iptables rules behind the proxier's back.
var iptablesTampering = map[string]func(e *env){
	"chains flushed": func(e *env) {
		_ = e.ipt.FlushChain("nat", "KUBE-SERVICES")
		_ = e.ipt.FlushChain("filter", "KUBE-IPVS-FILTER")
	},
	"jump deleted": func(e *env) {
		_ = e.ipt.DeleteRule("nat", "PREROUTING", "-m", "comment", "--comment", "kubernetes service portals", "-j", "KUBE-SERVICES")
	},
}

// TestTamperingIsRepairedByVerification: IPVS flushed, kube-ipvs0 deleted, an ipset
// destroyed, our chains flushed and a stray address on kube-ipvs0 are all repaired by the
// next periodic verification.
func TestTamperingIsRepairedByVerification(t *testing.T) {
	cases := map[string]func(e *env){
		"ipvs flushed":       func(e *env) { _ = e.ipvs.Flush() },
		"kube-ipvs0 deleted": func(e *env) { _ = e.nd.DeleteLink(reconcile.DummyDevice) },
		"ipset destroyed": func(e *env) {
			_ = e.ipset.Apply([]ipset.Op{{Kind: ipset.Destroy, Set: ipset.Set{Name: "KUBE-CLUSTER-IP"}}})
		},
		"chains flushed": iptablesTampering["chains flushed"],
		"jump deleted":   iptablesTampering["jump deleted"],
		"stray address":  func(e *env) { _ = e.nd.AddAddress(reconcile.DummyDevice, fixture.Addr("10.96.99.99")) },
		"ipset entry swapped": func(e *env) { // same count: found by a full read of the entries
			_ = e.ipset.Apply([]ipset.Op{
				{Kind: ipset.Del, Set: ipset.Set{Name: "KUBE-CLUSTER-IP"}, Entry: "10.96.0.10,tcp:80"},
				{Kind: ipset.Add, Set: ipset.Set{Name: "KUBE-CLUSTER-IP"}, Entry: "10.96.0.99,tcp:80"},
			})
		},
		"real server deleted": func(e *env) {
			_ = e.ipvs.DeleteRealServer(webCluster, kipvs.RealServer{Address: fixture.Addr("10.244.1.5"), Port: 8080, Weight: 1})
		},
	}
	for name, tamper := range cases {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			svc, sl := webService()
			e.start(svc, sl)
			before := snapshot(e)
			tamper(e)
			if snapshot(e) == before {
				t.Fatalf("tampering changed nothing; the test is void")
			}
			// A real server is verified within realServerWindows periods.
			for i := 0; i < reconcile.RealServerWindows && snapshot(e) != before; i++ {
				e.verifySync()
			}
			if got := snapshot(e); got != before {
				t.Errorf("not repaired:\n got %s\nwant %s", got, before)
			}
		})
	}
}

// TestIPSetVerificationReadsCounts: a periodic verification reads the sets' entry counts, not
// their entries, except once every realServerWindows periods; a count that changed makes it
// read the entries and repair them at once.
func TestIPSetVerificationReadsCounts(t *testing.T) {
	e := newEnv(t)
	svc, sl := webService()
	e.start(svc, sl)
	e.resetCounts()
	for i := 0; i < 2*reconcile.RealServerWindows; i++ {
		e.verifySync()
	}
	if got := e.ipset.Count("List"); got != 2 {
		t.Errorf("%d verifications listed every entry %d times, want 2", 2*reconcile.RealServerWindows, got)
	}
	if got := e.ipset.Count("EntryCounts"); got != 2*reconcile.RealServerWindows {
		t.Errorf("entry counts read %d times, want %d", got, 2*reconcile.RealServerWindows)
	}

	_ = e.ipset.Apply([]ipset.Op{{Kind: ipset.Del, Set: ipset.Set{Name: "KUBE-CLUSTER-IP"}, Entry: "10.96.0.10,tcp:80"}})
	e.resetCounts()
	e.verifySync()
	if !e.entries("KUBE-CLUSTER-IP")["10.96.0.10,tcp:80"] {
		t.Errorf("a deleted entry was not restored by the next verification: %v (%s)", e.entries("KUBE-CLUSTER-IP"), e.ops())
	}
}

// TestEmptySetsAreNotListed: a full read whose counts say every set of ours is empty lists no
// entries (the other family at a start parsed every entry of this one's sets); once a set of
// ours holds entries, a full read lists them.
func TestEmptySetsAreNotListed(t *testing.T) {
	e := newEnv(t)
	e.start()
	if got := e.ipset.Count("List"); got != 0 {
		t.Errorf("a start with every set of ours empty listed the entries %d times, want 0", got)
	}

	svc, sl := webService()
	restarted := newEnv(t, func(_ *kubeproxyconfig.KubeProxyConfiguration, r *env) {
		r.ipvs, r.nd, r.ipset, r.ipt = e.ipvs, e.nd, e.ipset, e.ipt
	})
	e.deliver(svc)
	e.deliver(sl)
	e.sync()
	e.resetCounts()
	restarted.start(svc, sl)
	if got := e.ipset.Count("List"); got != 1 {
		t.Errorf("a restart onto filled sets listed the entries %d times, want 1", got)
	}
	if n := e.ipset.Writes(); n != 0 {
		t.Errorf("a restart onto filled sets wrote to ipsets %d times: %s", n, e.ops())
	}
}

// snapshot renders the fake kernel's state for comparison.
func snapshot(e *env) string {
	s := fmt.Sprintf("bound=%v\n", e.bound())
	for _, vs := range e.ipvs.VirtualServers() {
		s += fmt.Sprintf("vs %s %v\n", vs.Key, e.realServers(vs.Key))
	}
	for _, set := range e.ipset.Sets() {
		s += fmt.Sprintf("set %s %v\n", set.Name, e.entries(set.Name))
	}
	for _, table := range []string{"nat", "filter"} {
		var buf bytes.Buffer
		_ = e.ipt.FakeIPTables.SaveInto(utiliptables.Table(table), &buf)
		s += buf.String()
	}
	return s
}

// TestAdoptsExistingStateWithoutFlush: a restart (or a swap from upstream) finds the kernel
// already programmed and changes nothing in IPVS, addresses or ipsets.
func TestAdoptsExistingStateWithoutFlush(t *testing.T) {
	first := newEnv(t)
	svc, sl := webService()
	first.start(svc, sl)

	second := newEnv(t, func(_ *kubeproxyconfig.KubeProxyConfiguration, e *env) {
		e.ipvs, e.nd, e.ipset, e.ipt = first.ipvs, first.nd, first.ipset, first.ipt
	})
	first.resetCounts()
	second.start(svc, sl)
	if n := first.ipvs.Writes() + first.nd.Writes() + first.ipset.Writes(); n != 0 {
		t.Errorf("adopting an existing state made %d IPVS/address/ipset writes: %s", n, first.ops())
	}
}

// TestGracefulTerminationOfTCPRealServers: a removed TCP endpoint is quiesced (weight 0) while
// it has connections and deleted once they are gone.
func TestGracefulTerminationOfTCPRealServers(t *testing.T) {
	e := newEnv(t)
	svc, sl := webService()
	e.start(svc, sl)
	leaving := kipvs.RealServer{Address: fixture.Addr("10.244.1.5"), Port: 8080}
	if err := e.ipvs.SetConnections(webCluster, netip.MustParseAddrPort("10.244.1.5:8080"), 1, 0); err != nil {
		t.Fatal(err)
	}
	e.p.OnEndpointSliceUpdate(nil, fixture.Slice(svc, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.2.6", Node: fixture.Node}))
	e.sync()
	if w, ok := e.realServers(webCluster)[leaving.String()]; !ok || w != 0 {
		t.Fatalf("a TCP real server with a connection should stay at weight 0, got %v", e.realServers(webCluster))
	}
	if _, ok := e.realServers(webNodePort)[leaving.String()]; ok {
		t.Errorf("an idle TCP real server should be deleted at once, got %v", e.realServers(webNodePort))
	}
	_ = e.ipvs.SetConnections(webCluster, netip.MustParseAddrPort("10.244.1.5:8080"), 0, 0)
	e.verifySync()
	if _, ok := e.realServers(webCluster)[leaving.String()]; ok {
		t.Errorf("a drained real server should be deleted by the next verification, got %v", e.realServers(webCluster))
	}
}

// TestUDPRealServersRemovedAtOnce: UDP has no graceful termination.
func TestUDPRealServersRemovedAtOnce(t *testing.T) {
	e := newEnv(t)
	svc := fixture.Service("dns", "10.96.0.53", fixture.Protocol(v1.ProtocolUDP))
	e.start(svc, fixture.Slice(svc, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.1.5"}, fixture.Endpoint{IP: "10.244.1.6"}))
	k := fixture.Key("10.96.0.53", kipvs.UDP, 80)
	_ = e.ipvs.SetConnections(k, netip.MustParseAddrPort("10.244.1.5:8080"), 3, 3)
	e.p.OnEndpointSliceUpdate(nil, fixture.Slice(svc, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.1.6"}))
	e.sync()
	if got := e.realServers(k); len(got) != 1 {
		t.Errorf("UDP real servers = %v, want only 10.244.1.6", got)
	}
}

// TestWeightZeroLeftoversAreDrainedOnStart: a previous process left a quiesced real server
// behind; the new one deletes it once idle and restores one that is wanted again.
func TestWeightZeroLeftoversAreDrainedOnStart(t *testing.T) {
	e := newEnv(t)
	svc, sl := webService()
	_ = e.ipvs.AddVirtualServer(kipvs.VirtualServer{Key: webCluster, Scheduler: "rr"})
	_ = e.ipvs.AddRealServer(webCluster, kipvs.RealServer{Address: fixture.Addr("10.244.9.9"), Port: 8080, Weight: 0})
	_ = e.ipvs.AddRealServer(webCluster, kipvs.RealServer{Address: fixture.Addr("10.244.1.5"), Port: 8080, Weight: 0})
	e.start(svc, sl)
	got := e.realServers(webCluster)
	if _, ok := got["10.244.9.9:8080"]; ok {
		t.Errorf("an idle weight-0 leftover should be deleted, got %v", got)
	}
	if got["10.244.1.5:8080"] != 1 {
		t.Errorf("a weight-0 real server that is an endpoint again should get weight 1, got %v", got)
	}
}

// TestServiceDeletionRemovesItsObjects: deleting a service leaves no virtual server, binding
// or ipset entry behind.
func TestServiceDeletionRemovesItsObjects(t *testing.T) {
	e := newEnv(t)
	svc, sl := webService()
	e.start(svc, sl)
	e.p.OnServiceDelete(svc)
	e.p.OnEndpointSliceDelete(sl)
	e.sync()
	if e.hasVirtualServer(webCluster) || e.hasVirtualServer(webNodePort) {
		t.Errorf("virtual servers left: %v", e.ipvs.VirtualServers())
	}
	if len(e.bound()) != 0 || len(e.entries("KUBE-CLUSTER-IP")) != 0 || len(e.entries("KUBE-NODE-PORT-TCP")) != 0 {
		t.Errorf("left behind: bound %v, cluster %v, nodeport %v", e.bound(), e.entries("KUBE-CLUSTER-IP"), e.entries("KUBE-NODE-PORT-TCP"))
	}
}

// TestExcludeCIDRsAreNotTouched: a virtual server inside --ipvs-exclude-cidrs that no service
// wants is left alone; one outside is removed.
func TestExcludeCIDRsAreNotTouched(t *testing.T) {
	e := newEnv(t, func(c *kubeproxyconfig.KubeProxyConfiguration, e *env) {
		c.IPVS.ExcludeCIDRs = []string{"172.16.0.0/16"}
	})
	foreign := fixture.Key("172.16.0.1", kipvs.TCP, 443)
	stale := fixture.Key("10.96.7.7", kipvs.TCP, 443)
	_ = e.ipvs.AddVirtualServer(kipvs.VirtualServer{Key: foreign, Scheduler: "rr"})
	_ = e.ipvs.AddVirtualServer(kipvs.VirtualServer{Key: stale, Scheduler: "rr"})
	svc, sl := webService()
	e.start(svc, sl)
	if !e.hasVirtualServer(foreign) {
		t.Errorf("a virtual server in --ipvs-exclude-cidrs was deleted")
	}
	if e.hasVirtualServer(stale) {
		t.Errorf("a stale virtual server outside --ipvs-exclude-cidrs was kept")
	}
}

// TestFailedWriteIsRetriedAfterReload: a failing kernel write fails the sync; the next sync
// reloads the kernel state and completes the work.
// Additions are sent in batches: the kernel may refuse one of them (the others are made),
// or the round trip may fail (which were added is unknown).
func TestFailedWriteIsRetriedAfterReload(t *testing.T) {
	for _, method := range []string{"AddRealServer", "Add"} {
		t.Run(method, func(t *testing.T) {
			e := newEnv(t)
			svc, sl := webService()
			e.start(svc, sl)
			e.ipvs.InjectError(method, errors.New("injected"))
			e.p.OnEndpointSliceUpdate(nil, fixture.Slice(svc, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.1.5"}, fixture.Endpoint{IP: "10.244.2.6"}, fixture.Endpoint{IP: "10.244.3.7"}, fixture.Endpoint{IP: "10.244.4.8"}))
			if err := e.p.syncProxyRules(); err == nil {
				t.Fatalf("the sync should report the failed write")
			}
			// The virtual server whose write failed (whichever came first) had 2 and gets 2 more:
			// a refusal leaves it with the other one, a failed round trip with neither.
			partial := 0
			for _, k := range []kipvs.Key{webCluster, webNodePort} {
				if len(e.realServers(k)) == 3 {
					partial++
				}
			}
			if want := map[string]int{"AddRealServer": 1, "Add": 0}[method]; partial != want {
				t.Errorf("%d virtual servers with 3 real servers after the failed write, want %d (%s)", partial, want, e.ops())
			}
			e.sync()
			for _, k := range []kipvs.Key{webCluster, webNodePort} {
				if got := e.realServers(k); len(got) != 4 {
					t.Errorf("after the retry the real servers of %s are %v, want 4", k, got)
				}
			}
		})
	}
}
