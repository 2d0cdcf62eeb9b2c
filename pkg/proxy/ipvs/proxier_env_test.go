package ipvs

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sysctltest "k8s.io/component-helpers/node/util/sysctl/testing"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	"k8s.io/kubernetes/pkg/proxy/conntrack"
	"k8s.io/kubernetes/pkg/proxy/healthcheck"
	proxyutil "k8s.io/kubernetes/pkg/proxy/util"
	utiliptables "k8s.io/kubernetes/pkg/util/iptables"
	iptablestest "k8s.io/kubernetes/pkg/util/iptables/testing"
	"k8s.io/utils/ptr"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/forkconfig"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipset"
	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/netdev"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/nftgeneration"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/sockdiag"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/internal/fixture"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/reconcile"
)

// countingIPTables counts calls on upstream's iptables fake, which keeps state but no counts.
// With gen set it stands for iptables on nf_tables: its text starts with that backend's header
// and every write advances the ruleset generation, as a commit does in the kernel.
type countingIPTables struct {
	*iptablestest.FakeIPTables
	reads, writes int
	gen           *nftgeneration.Fake
	header        string // the first line of every SaveInto, as iptables-save writes it
	// restoreErr, when set, fails the next RestoreAll (once), as iptables-restore does on a
	// rule the kernel refuses: nothing is written.
	restoreErr error
}

func (c *countingIPTables) SaveInto(t utiliptables.Table, b *bytes.Buffer) error {
	c.reads++
	b.WriteString(c.header)
	return c.FakeIPTables.SaveInto(t, b)
}

// committed advances the generation after a write (a failed one too: harmless, it only makes
// the next verification read).
func (c *countingIPTables) committed() {
	if c.gen != nil {
		c.gen.Bump()
	}
}

func (c *countingIPTables) FlushChain(t utiliptables.Table, ch utiliptables.Chain) error {
	defer c.committed()
	return c.FakeIPTables.FlushChain(t, ch)
}

func (c *countingIPTables) DeleteChain(t utiliptables.Table, ch utiliptables.Chain) error {
	defer c.committed()
	return c.FakeIPTables.DeleteChain(t, ch)
}

func (c *countingIPTables) DeleteRule(t utiliptables.Table, ch utiliptables.Chain, args ...string) error {
	defer c.committed()
	return c.FakeIPTables.DeleteRule(t, ch, args...)
}

// RestoreAll also does what upstream's fake cannot parse: "-I CHAIN args" lines, which real
// iptables-restore --noflush inserts at the head of a chain the input need not declare.
func (c *countingIPTables) RestoreAll(d []byte, f utiliptables.FlushFlag, r utiliptables.RestoreCountersFlag) error {
	c.writes++
	defer c.committed()
	if err := c.restoreErr; err != nil {
		c.restoreErr = nil
		return err
	}
	type insert struct {
		table utiliptables.Table
		chain utiliptables.Chain
		args  []string
	}
	var rest bytes.Buffer
	var inserts []insert
	table := ""
	for _, line := range strings.SplitAfter(string(d), "\n") {
		text := strings.TrimSpace(line)
		if strings.HasPrefix(text, "*") {
			table = text[1:]
		}
		if !strings.HasPrefix(text, "-I ") {
			rest.WriteString(line)
			continue
		}
		words, err := fixture.SplitRestoreWords(text)
		if err != nil || len(words) < 3 {
			return fmt.Errorf("bad insert %q: %v", text, err)
		}
		inserts = append(inserts, insert{utiliptables.Table(table), utiliptables.Chain(words[1]), words[2:]})
	}
	if err := c.FakeIPTables.RestoreAll(rest.Bytes(), f, r); err != nil {
		return err
	}
	for _, in := range inserts {
		if _, err := c.FakeIPTables.EnsureRule(utiliptables.Prepend, in.table, in.chain, in.args...); err != nil {
			return err
		}
	}
	return nil
}

func (c *countingIPTables) EnsureRule(p utiliptables.RulePosition, t utiliptables.Table, ch utiliptables.Chain, args ...string) (bool, error) {
	c.writes++
	defer c.committed()
	return c.FakeIPTables.EnsureRule(p, t, ch, args...)
}

// env is a proxier wired to faithful fakes of every kernel interface.
type env struct {
	t     *testing.T
	p     *Proxier
	ipvs  *kipvs.Fake
	nd    *netdev.Fake
	ipset *ipset.Fake
	ipt   *countingIPTables
	// listeners are the host's listening sockets.
	listeners *sockdiag.Fake
	// rulesGen, when a mutate function sets it, is the proxier's nf_tables generation.
	rulesGen *nftgeneration.Fake
	// wrapIPVS, when a mutate function sets it, stands between the proxier and the fake IPVS.
	wrapIPVS func(*kipvs.Fake) kipvs.Interface
	// wrapIPSet, when a mutate function sets it, stands between the proxier and the fake ipset.
	wrapIPSet func(*ipset.Fake) ipset.Interface
}

func defaultTestConfig() *kubeproxyconfig.KubeProxyConfiguration {
	return &kubeproxyconfig.KubeProxyConfiguration{
		SyncPeriod:    metav1.Duration{Duration: 30 * time.Second},
		MinSyncPeriod: metav1.Duration{},
		IPTables:      kubeproxyconfig.KubeProxyIPTablesConfiguration{MasqueradeBit: ptr.To[int32](14)},
		IPVS:          kubeproxyconfig.KubeProxyIPVSConfiguration{Scheduler: "rr"},
	}
}

func newEnv(t *testing.T, mutate ...func(*kubeproxyconfig.KubeProxyConfiguration, *env)) *env {
	t.Helper()
	e := &env{
		t: t, ipvs: kipvs.NewFake(), nd: netdev.NewFake(), ipset: ipset.NewFake(),
		ipt:       &countingIPTables{FakeIPTables: iptablestest.NewFake()},
		listeners: sockdiag.NewFake(),
	}
	e.nd.AddLink("eth0", fixture.NodeIP4)
	cfg := defaultTestConfig()
	for _, m := range mutate {
		m(cfg, e)
	}
	var ki kipvs.Interface = e.ipvs
	if e.wrapIPVS != nil {
		ki = e.wrapIPVS(e.ipvs)
	}
	var is ipset.Interface = e.ipset
	if e.wrapIPSet != nil {
		is = e.wrapIPSet(e.ipset)
	}
	k := Kernel{IPVS: ki, Netdev: e.nd, IPSet: is, IPTables: e.ipt, Conntrack: conntrack.NewFake(), Listeners: e.listeners}
	if e.rulesGen != nil {
		k.RulesetGen = e.rulesGen
	}
	p, err := NewProxier(context.Background(), Config{
		Family:              v1.IPv4Protocol,
		NodeName:            fixture.Node,
		NodeIP:              net.IP(fixture.NodeIP4.AsSlice()),
		Proxy:               cfg,
		Fork:                forkconfig.Default(),
		LocalDetector:       proxyutil.NewDetectLocalByCIDR("10.244.0.0/16"),
		ServiceHealthServer: healthcheck.NewFakeServiceHealthServer(),
	}, k, sysctltest.NewFake(), false)
	if err != nil {
		t.Fatalf("NewProxier: %v", err)
	}
	e.p = p
	return e
}

// start delivers the initial lists and the synced signals, which run the first sync.
func (e *env) start(objs ...any) {
	e.t.Helper()
	for _, o := range objs {
		e.deliver(o)
	}
	e.p.OnServiceSynced()
	e.p.OnEndpointSlicesSynced()
}

func (e *env) deliver(o any) {
	switch o := o.(type) {
	case *v1.Service:
		e.p.serviceChanges.Update(nil, o)
	case *discovery.EndpointSlice:
		e.p.endpointsChanges.EndpointSliceUpdate(o, false)
	default:
		e.t.Fatalf("cannot deliver %T", o)
	}
}

// sync runs one sync and fails the test on error.
func (e *env) sync() {
	e.t.Helper()
	if err := e.p.syncProxyRules(); err != nil {
		e.t.Fatalf("sync: %v", err)
	}
}

// verifySync runs a sync that verifies the kernel, as the periodic one does.
func (e *env) verifySync() {
	e.t.Helper()
	e.p.mu.Lock()
	e.p.lastVerify = time.Time{}
	e.p.mu.Unlock()
	e.sync()
}

func (e *env) resetCounts() {
	e.ipvs.ResetCounts()
	e.nd.ResetCounts()
	e.ipset.ResetCounts()
	e.listeners.ResetCounts()
	e.ipt.reads, e.ipt.writes = 0, 0
}

// writes counts kernel writes of every kind since the last reset.
func (e *env) writes() int {
	return e.ipvs.Writes() + e.nd.Writes() + e.ipset.Writes() + e.ipt.writes
}

// reads counts kernel reads of every kind since the last reset.
func (e *env) reads() int {
	return e.ipvs.Reads() + e.ipset.Reads() + e.nd.Reads() + e.listeners.Reads() + e.ipt.reads
}

func (e *env) ops() string {
	return fmt.Sprintf("ipvs=%v netdev=%v ipset=%v sockdiag=%v iptables(r=%d w=%d)", e.ipvs.Counts(), e.nd.Counts(), e.ipset.Counts(), e.listeners.Counts(), e.ipt.reads, e.ipt.writes)
}

// realServers is what the fake kernel holds for a virtual server.
func (e *env) realServers(k kipvs.Key) map[string]int {
	out := map[string]int{}
	for _, rs := range e.ipvs.RealServers(k) {
		out[rs.RealServer.String()] = rs.Weight
	}
	return out
}

func (e *env) hasVirtualServer(k kipvs.Key) bool {
	for _, vs := range e.ipvs.VirtualServers() {
		if vs.Key == k {
			return true
		}
	}
	return false
}

func (e *env) bound() map[string]bool {
	out := map[string]bool{}
	for _, a := range e.nd.Addresses(reconcile.DummyDevice) {
		out[a.String()] = true
	}
	return out
}

func (e *env) entries(set string) map[string]bool {
	out := map[string]bool{}
	for _, x := range e.ipset.Entries(set) {
		out[x] = true
	}
	return out
}

// manyServicesEnv starts a proxier with n ClusterIP Services of one endpoint each (n virtual
// servers): s<i> at 10.96.<i/250>.<i%250+1>:80, its endpoint 10.244.<same>:8080 on node-b.
func manyServicesEnv(t *testing.T, n int) *env {
	e := newEnv(t)
	var objs []any
	for i := 0; i < n; i++ {
		svc := fixture.Service(fmt.Sprintf("s%d", i), fmt.Sprintf("10.96.%d.%d", i/250, i%250+1))
		objs = append(objs, svc, fixture.Slice(svc, v1.IPv4Protocol, fixture.Endpoint{IP: fmt.Sprintf("10.244.%d.%d", i/250, i%250+1), Node: "node-b"}))
	}
	e.start(objs...)
	return e
}
