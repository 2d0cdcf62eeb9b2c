package ipvs

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/events"
	utilsysctl "k8s.io/component-helpers/node/util/sysctl"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/proxy"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	"k8s.io/kubernetes/pkg/proxy/conntrack"
	"k8s.io/kubernetes/pkg/proxy/healthcheck"
	"k8s.io/kubernetes/pkg/proxy/metrics"
	"k8s.io/kubernetes/pkg/proxy/runner"
	proxyutil "k8s.io/kubernetes/pkg/proxy/util"
	utiliptables "k8s.io/kubernetes/pkg/util/iptables"
	utilkernel "k8s.io/kubernetes/pkg/util/kernel"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/forkconfig"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipset"
	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/netdev"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/nftgeneration"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/sockdiag"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/desired"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/reconcile"
)

// Kernel holds the adapters the proxier writes through.
type Kernel struct {
	IPVS      kipvs.Interface
	Netdev    netdev.Interface
	IPSet     ipset.Interface
	IPTables  utiliptables.Interface
	Conntrack conntrack.Interface
	// RulesetGen reads the nf_tables ruleset generation; nil makes every verification read
	// the iptables rules (iptablesread.go).
	RulesetGen nftgeneration.Reader
	// Listeners reads the host's listening sockets for the address guard
	// (policy_hostports.go); nil leaves that check out.
	Listeners sockdiag.Interface
}

// Config is what one family's proxier is built from.
type Config struct {
	Family   v1.IPFamily
	NodeName string
	NodeIP   net.IP
	Proxy    *kubeproxyconfig.KubeProxyConfiguration
	// Fork is the fork's own settings (LB binding default, address guard, random-fully).
	Fork          forkconfig.Config
	LocalDetector proxyutil.LocalTrafficDetector
	Recorder      events.EventRecorder
	HealthzServer *healthcheck.ProxyHealthServer
	// ServiceHealthServer serves healthCheckNodePorts; nil builds the real one.
	ServiceHealthServer healthcheck.ServiceHealthServer
}

// Proxier programs one IP family: the upstream change trackers feed it Services and
// EndpointSlices; each sync recomputes the desired state of the service ports that changed and
// the reconciler writes the difference.
type Proxier struct {
	family      v1.IPFamily
	nodeName    string
	nodeIP      netip.Addr
	cfg         *kubeproxyconfig.KubeProxyConfiguration
	fork        forkconfig.Config
	syncPeriod  time.Duration
	detector    proxyutil.LocalTrafficDetector
	nodePortSel *proxyutil.NodePortAddresses
	recorder    events.EventRecorder
	healthz     *healthcheck.ProxyHealthServer
	svcHealth   healthcheck.ServiceHealthServer
	conntrack   conntrack.Interface
	netdev      netdev.Interface
	listeners   sockdiag.Interface

	serviceChanges   *proxy.ServiceChangeTracker
	endpointsChanges *proxy.EndpointsChangeTracker

	// changedPorts are the service ports whose Service or endpoints changed since the last
	// sync, collected by the trackers' callbacks (under their own locks, hence changedMu).
	changedMu    sync.Mutex
	changedPorts sets.Set[proxy.ServicePortName]

	mu                   sync.Mutex // guards everything below
	svcPortMap           proxy.ServicePortMap
	endpointsMap         proxy.EndpointsMap
	topologyLabels       map[string]string
	servicesSynced       bool
	endpointSlicesSynced bool
	initialized          atomic.Bool
	// addressesChanged is set by the address watch: the next sync re-reads the node context.
	addressesChanged atomic.Bool

	claims     *reconcile.Claims
	reconciler *reconcile.Reconciler
	// meter counts and times the kernel operations of the proxier and its reconciler.
	meter *kernelMeter
	// allPortsDirty makes the next sync recompute every service port (first sync, new node
	// addresses, new topology labels).
	allPortsDirty bool
	// needLoad makes the next sync reload the kernel state first (start, after a failure).
	needLoad   bool
	lastVerify time.Time
	nodeCtx    desired.NodeContext
	global     desired.GlobalState
	noLocal    map[proxy.ServicePortName]noLocalEndpoints
	health     healthChecks
	// policy is the LB binding policy's and address guard's state (policy_report.go).
	policy *policyState
	// intake holds the cluster inputs handlers delivered for the next sync (intake.go); it
	// has its own lock.
	intake *clusterIntake
	// svcAddrs are the cluster IPs and service CIDRs the guard refuses (policy_serviceaddrs.go).
	svcAddrs *serviceAddrs
	// vxlanPorts are the node's VXLAN ports as last read (masquerade.go).
	vxlanPorts []uint16
	// rulesStale makes the next sync recompute the iptables rules (at start, and when an input
	// of theirs that no service port carries changed: the VXLAN ports).
	rulesStale bool

	syncRunner *runner.BoundedFrequencyRunner
}

type noLocalEndpoints struct{ internal, external bool }

var _ proxy.Provider = &Proxier{}

// NewProxier builds the proxier of one family. It sets the sysctls IPVS needs; the kernel is
// first read on the first sync, so an existing state (ours or upstream's) is adopted.
func NewProxier(ctx context.Context, cfg Config, k Kernel, sysctl utilsysctl.Interface, initOnly bool) (*Proxier, error) {
	logger := klog.FromContext(ctx).WithValues("ipFamily", cfg.Family)
	if err := setupKernel(logger, cfg.Proxy, sysctl, k.IPVS, utilkernel.GetVersion); err != nil {
		return nil, err
	}
	if initOnly {
		logger.Info("System initialized and --init-only specified")
		return nil, nil
	}
	meter := &kernelMeter{}
	k = k.metered(meter)

	exclude, err := parsePrefixes(cfg.Family, cfg.Proxy.IPVS.ExcludeCIDRs)
	if err != nil {
		return nil, fmt.Errorf("ipvs exclude CIDRs: %w", err)
	}
	nodeIP, _ := netip.AddrFromSlice(cfg.NodeIP)
	npa := proxyutil.NewNodePortAddresses(cfg.Family, cfg.Proxy.NodePortAddresses)
	svcHealth := cfg.ServiceHealthServer
	if svcHealth == nil {
		svcHealth = healthcheck.NewServiceHealthServer(cfg.NodeName, cfg.Recorder, npa, cfg.HealthzServer, cfg.Family)
	}
	p := &Proxier{
		family:        cfg.Family,
		nodeName:      cfg.NodeName,
		nodeIP:        nodeIP.Unmap(),
		cfg:           cfg.Proxy,
		fork:          cfg.Fork,
		syncPeriod:    cfg.Proxy.SyncPeriod.Duration,
		detector:      cfg.LocalDetector,
		nodePortSel:   npa,
		recorder:      cfg.Recorder,
		healthz:       cfg.HealthzServer,
		svcHealth:     svcHealth,
		conntrack:     k.Conntrack,
		netdev:        k.Netdev,
		listeners:     k.Listeners,
		changedPorts:  sets.New[proxy.ServicePortName](),
		svcPortMap:    proxy.ServicePortMap{},
		endpointsMap:  proxy.EndpointsMap{},
		claims:        reconcile.NewClaims(),
		reconciler:    newReconciler(cfg.Family, k, exclude),
		meter:         meter,
		allPortsDirty: true,
		rulesStale:    true,
		needLoad:      true,
		noLocal:       map[proxy.ServicePortName]noLocalEndpoints{},
		health:        healthChecks{ports: map[proxy.ServicePortName]uint16{}, dirty: true},
		policy:        newPolicyState(cfg.Family, cfg.NodeName, cfg.Fork),
		intake:        newClusterIntake(cfg.Family, cfg.NodeName),
		svcAddrs:      newServiceAddrs(),
		nodeCtx: desired.NodeContext{
			Family:    cfg.Family,
			NodeName:  cfg.NodeName,
			Scheduler: cfg.Proxy.IPVS.Scheduler,
			NodeIP:    nodeIP.Unmap(),
		},
	}
	p.serviceChanges = proxy.NewServiceChangeTracker(cfg.Family, newServiceInfo, p.onServicePortsChanged)
	p.endpointsChanges = proxy.NewEndpointsChangeTracker(cfg.Family, cfg.NodeName, nil, p.onEndpointsChanged)

	minSync := cfg.Proxy.MinSyncPeriod.Duration
	// Retry a failed sync soon: the kernel state is reloaded first.
	p.syncRunner = runner.NewBoundedFrequencyRunner("sync-runner", p.syncProxyRules, minSync, max(minSync, time.Second), p.syncPeriod)
	logger.V(2).Info("IPVS proxier created", "syncPeriod", p.syncPeriod, "minSyncPeriod", minSync, "scheduler", cfg.Proxy.IPVS.Scheduler)
	return p, nil
}

// newReconciler builds the reconciler of one family over k's adapters; it reports the ipset
// entries the kernel refuses in the fork's gauge.
func newReconciler(family v1.IPFamily, k Kernel, exclude []netip.Prefix) *reconcile.Reconciler {
	rk := reconcile.Kernel{IPVS: k.IPVS, Netdev: k.Netdev, IPSet: k.IPSet, IPTables: k.IPTables, RulesetGen: k.RulesetGen}
	return reconcile.New(family, rk, exclude, func(n int) {
		ipsetEntriesRefused.WithLabelValues(string(family)).Set(float64(n))
	})
}

func newServiceInfo(port *v1.ServicePort, svc *v1.Service, base *proxy.BaseServicePortInfo) proxy.ServicePort {
	return desired.NewServicePortInfo(port, svc, base)
}

// onServicePortsChanged and onEndpointsChanged are the trackers' callbacks: they record
// which service ports changed, which is all a sync recomputes.
func (p *Proxier) onServicePortsChanged(previous, current proxy.ServicePortMap) {
	p.noteChanged(maps.Keys(previous), maps.Keys(current))
}

func (p *Proxier) onEndpointsChanged(previous, current proxy.EndpointsMap) {
	p.noteChanged(maps.Keys(previous), maps.Keys(current))
}

func (p *Proxier) noteChanged(names ...iter.Seq[proxy.ServicePortName]) {
	p.changedMu.Lock()
	defer p.changedMu.Unlock()
	for _, seq := range names {
		for name := range seq {
			p.changedPorts.Insert(name)
		}
	}
}

// Sync asks for a sync as soon as minSyncPeriod allows.
func (p *Proxier) Sync() {
	if p.healthz != nil {
		p.healthz.QueuedUpdate(p.family)
	}
	metrics.SyncProxyRulesLastQueuedTimestamp.WithLabelValues(string(p.family)).SetToCurrentTime()
	p.syncRunner.Run()
}

// SyncLoop runs syncs until the process ends: on demand, and every syncPeriod.
func (p *Proxier) SyncLoop() {
	// Report healthy before the first sync so the health check does not fail while waiting.
	if p.healthz != nil {
		p.healthz.Updated(p.family)
	}
	metrics.SyncProxyRulesLastQueuedTimestamp.WithLabelValues(string(p.family)).SetToCurrentTime()
	p.watchAddresses(context.Background())
	p.syncRunner.Loop(wait.NeverStop)
}

// watchAddresses has the node's address changes reach the next sync at once: an address that
// becomes this node's must stop being bound to kube-ipvs0 (or served where the guard refuses
// it) without waiting for the next verification. Without the subscription the verification
// still catches every change, a period later.
func (p *Proxier) watchAddresses(ctx context.Context) {
	err := p.netdev.WatchAddresses(ctx, reconcile.DummyDevice, func() {
		p.addressesChanged.Store(true)
		p.Sync()
	})
	if err != nil {
		klog.Background().Error(err, "Watching the node's addresses failed; they are read at each verification only", "ipFamily", p.family)
	}
}

func (p *Proxier) OnServiceAdd(svc *v1.Service) { p.OnServiceUpdate(nil, svc) }
func (p *Proxier) OnServiceUpdate(old, svc *v1.Service) {
	if p.serviceChanges.Update(old, svc) && p.initialized.Load() {
		p.Sync()
	}
}
func (p *Proxier) OnServiceDelete(svc *v1.Service) { p.OnServiceUpdate(svc, nil) }
func (p *Proxier) OnServiceSynced() {
	p.mu.Lock()
	p.servicesSynced = true
	p.initialized.Store(p.endpointSlicesSynced)
	p.mu.Unlock()
	_ = p.syncProxyRules()
}

func (p *Proxier) OnEndpointSliceAdd(s *discovery.EndpointSlice) {
	if p.endpointsChanges.EndpointSliceUpdate(s, false) && p.initialized.Load() {
		p.Sync()
	}
}
func (p *Proxier) OnEndpointSliceUpdate(_, s *discovery.EndpointSlice) { p.OnEndpointSliceAdd(s) }
func (p *Proxier) OnEndpointSliceDelete(s *discovery.EndpointSlice) {
	if p.endpointsChanges.EndpointSliceUpdate(s, true) && p.initialized.Load() {
		p.Sync()
	}
}
func (p *Proxier) OnEndpointSlicesSynced() {
	p.mu.Lock()
	p.endpointSlicesSynced = true
	p.initialized.Store(p.servicesSynced)
	p.mu.Unlock()
	_ = p.syncProxyRules()
}

// OnTopologyChange recomputes every service port at the next sync: topology hints depend on
// the node's labels. It does not wait for a running sync (intake.go).
func (p *Proxier) OnTopologyChange(labels map[string]string) {
	p.intake.setTopology(labels)
	p.Sync()
}

// OnServiceCIDRsChanged records the service CIDRs for the address guard (upstream's IPVS
// proxier does not use them). It does not wait for a running sync (intake.go).
func (p *Proxier) OnServiceCIDRsChanged(cidrs []string) {
	p.intake.setServiceCIDRs(serviceCIDRsIn(p.family, cidrs))
	if p.initialized.Load() {
		p.Sync()
	}
}

// syncProxyRules brings the kernel up to date. It returns an error to have the runner retry.
func (p *Proxier) syncProxyRules() (retErr error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.initialized.Load() {
		klog.V(2).InfoS("Not syncing ipvs rules until Services and Endpoints have been received from master")
		return nil
	}
	logger := klog.Background().WithValues("ipFamily", p.family)
	start := time.Now()
	before := p.meter.counts()
	p.meter.takeTimes()
	ph := startPhases()
	defer func() {
		metrics.SyncProxyRulesLatency.WithLabelValues(string(p.family)).Observe(metrics.SinceInSeconds(start))
		d := p.meter.counts()
		reads, writes := d.reads-before.reads, d.writes-before.writes
		recordKernelOps(p.family, reads, writes)
		logger.V(2).Info("SyncProxyRules complete", "elapsed", time.Since(start), "kernelReads", reads, "kernelWrites", writes,
			"phases", ph.String(), "kernelTime", p.meter.takeTimes(), "err", retErr)
	}()

	// Collect the changes: the trackers' callbacks record which service ports changed.
	p.svcPortMap.Update(p.serviceChanges)
	endpointUpdate := p.endpointsMap.Update(p.endpointsChanges)
	p.changedMu.Lock()
	changed := p.changedPorts
	p.changedPorts = sets.New[proxy.ServicePortName]()
	p.changedMu.Unlock()
	ph.done("trackers")

	verify := p.needLoad || time.Since(p.lastVerify) >= p.syncPeriod
	if verify {
		if err := p.reconciler.Load(p.needLoad); err != nil {
			p.needLoad = true
			logger.Error(err, "Reading the kernel state failed")
			return err
		}
		ph.done("load")
	}
	if addrs := p.addressesChanged.Swap(false); verify || addrs {
		allDirty, listenersChanged := p.refreshNodeContext(logger)
		if allDirty {
			p.allPortsDirty = true
		} else if listenersChanged {
			changed = changed.Union(p.portsNamingOwnAddresses(&p.nodeCtx))
		}
		p.refreshVXLANPorts(logger)
		ph.done("node")
	}

	// The labels come from the Node informer, not from the kernel: a zone change must reach
	// this sync's desired state, not wait for the next verification.
	p.takeIntake()
	p.nodeCtx.TopologyLabels = p.topologyLabels
	p.applyForkContext()
	if p.allPortsDirty {
		changed = sets.KeySet(p.svcPortMap).Union(p.claims.Ports())
	}
	// Every changed port's cluster IP is known before any port is computed, so the guard's
	// verdicts do not depend on the order Services arrived in.
	affected := sets.New[proxy.ServicePortName]()
	for name := range changed {
		p.svcAddrs.update(name, p.svcPortMap[name], affected)
	}
	changed = changed.Union(affected)
	for name := range changed {
		p.updatePort(name)
	}
	p.reportPolicyDecisions(logger)
	if p.allPortsDirty || p.claims.RulesInputsChanged() || p.rulesStale {
		p.global = desired.DesiredGlobal(&desired.GlobalConfig{
			Family:                   p.family,
			MasqueradeBit:            int(*p.cfg.IPTables.MasqueradeBit),
			MasqueradeAll:            p.cfg.Linux.MasqueradeAll,
			LocalDetector:            p.detector,
			NodeBlockedLoadBalancers: p.claims.BlockedKeys(),
			RandomFully:              p.fork.MasqueradeRandomFully,
			VXLANPorts:               p.vxlanPorts,
		}, p.claims.NonEmpty)
		p.rulesStale = false
	}
	ph.done("desired")

	err := p.reconciler.Apply(p.claims, p.global)
	ph.done("apply")
	if err != nil {
		// The cache may be wrong now: read the kernel again before the retry, and look at
		// every object then (the dirty marks stay set until a sync succeeds).
		p.needLoad = true
		countApplyFailure(p.family, err)
		logger.Error(err, "Syncing IPVS rules failed; will retry")
		return err
	}
	p.claims.ClearDirty()
	p.allPortsDirty = false
	p.needLoad = false
	if verify {
		// Measured from the end of the apply: a cold start that takes longer than the sync
		// period must not be followed at once by another full verification.
		p.lastVerify = time.Now()
		if err := p.reconciler.Drain(p.claims); err != nil {
			p.needLoad = true
			logger.Error(err, "Graceful termination of real servers failed; will retry")
		}
		ph.done("drain")
	}

	for name, times := range endpointUpdate.LastChangeTriggerTimes {
		for _, t := range times {
			latency := metrics.SinceInSeconds(t)
			metrics.NetworkProgrammingLatency.WithLabelValues(string(p.family)).Observe(latency)
			logger.V(4).Info("Network programming", "endpoint", klog.KRef(name.Namespace, name.Name), "elapsed", latency)
		}
	}
	if p.healthz != nil {
		p.healthz.Updated(p.family)
	}
	metrics.SyncProxyRulesLastTimestamp.WithLabelValues(string(p.family)).SetToCurrentTime()
	p.syncHealthChecks(logger)
	p.reportNoLocalEndpoints()
	if endpointUpdate.ConntrackCleanupRequired && p.conntrack != nil {
		conntrack.CleanStaleEntries(p.conntrack, p.family, p.svcPortMap, p.endpointsMap)
	}
	return nil
}

// countApplyFailure counts a failed apply in upstream's failure metric of its stage: only an
// iptables-restore that failed is an iptables restore failure.
func countApplyFailure(family v1.IPFamily, err error) {
	var failed *reconcile.ApplyError
	if errors.As(err, &failed) && failed.Stage == reconcile.StageIPTables {
		metrics.IPTablesRestoreFailuresTotal.WithLabelValues(string(family)).Inc()
	}
}

// updatePort recomputes one service port's desired state.
func (p *Proxier) updatePort(name proxy.ServicePortName) {
	sp, ok := p.svcPortMap[name]
	if !ok {
		p.claims.Remove(name)
		delete(p.noLocal, name)
		p.health.update(name, 0)
		p.notePolicyDecisions(name, nil, nil)
		return
	}
	p.health.update(name, sp.HealthCheckNodePort())
	in := desired.ServicePortInput{Name: name, Port: sp, Endpoints: p.endpointsMap[name]}
	st, blocked := desired.ServicePort(&p.nodeCtx, in)
	clusterIP, _ := desired.AddrOf(sp.ClusterIP())
	p.claims.Set(name, clusterIP, st, blocked)
	p.notePolicyDecisions(name, sp, st.Decisions)

	_, local, _, any := proxy.CategorizeEndpoints(in.Endpoints, sp, p.nodeName, p.topologyLabels)
	nl := noLocalEndpoints{
		internal: any && len(local) == 0 && sp.InternalPolicyLocal(),
		external: any && len(local) == 0 && sp.ExternalPolicyLocal(),
	}
	if nl == (noLocalEndpoints{}) {
		delete(p.noLocal, name)
	} else {
		p.noLocal[name] = nl
	}
}

// reportNoLocalEndpoints sets upstream's gauges: Services (not ports) with a Local traffic
// policy and endpoints, none of them on this node.
func (p *Proxier) reportNoLocalEndpoints() {
	internal, external := sets.New[types.NamespacedName](), sets.New[types.NamespacedName]()
	for name, nl := range p.noLocal {
		if nl.internal {
			internal.Insert(name.NamespacedName)
		}
		if nl.external {
			external.Insert(name.NamespacedName)
		}
	}
	metrics.SyncProxyRulesNoLocalEndpointsTotal.WithLabelValues("internal", string(p.family)).Set(float64(internal.Len()))
	metrics.SyncProxyRulesNoLocalEndpointsTotal.WithLabelValues("external", string(p.family)).Set(float64(external.Len()))
}

// refreshNodeContext reads the node's addresses and listening sockets into the NodeContext; it
// reports whether the addresses every service port depends on changed, and whether the
// listeners did (which only ports naming this node's addresses depend on). The context's other
// fields are the configuration (set once) and the cluster's inputs (applyForkContext).
func (p *Proxier) refreshNodeContext(logger klog.Logger) (allDirty, listenersChanged bool) {
	local, err := p.netdev.LocalAddresses(reconcile.DummyDevice)
	if err != nil {
		logger.Error(err, "Reading the node's addresses failed; keeping the previous ones")
		return false, false
	}
	listeners := p.nodeCtx.HostListeners
	if p.listeners != nil {
		ls, err := p.listeners.Listeners()
		if err != nil {
			logger.Error(err, "Reading the host's listening sockets failed; keeping the previous ones")
		} else {
			listeners = desired.NewHostListeners(ls)
		}
	}
	localSet := map[netip.Addr]bool{}
	var localInFamily []netip.Addr
	for _, a := range local {
		a = a.Unmap()
		if desired.InFamily(p.family, a) {
			localSet[a] = true
			localInFamily = append(localInFamily, a)
		}
	}
	all := append(append([]netip.Addr(nil), localInFamily...), p.reconciler.Bindings()...)
	nodePort := desired.SelectNodePortAddresses(p.nodePortSel, localInFamily, all)

	ctx := &p.nodeCtx
	allDirty = !sameAddresses(ctx.LocalAddresses, localSet, ctx.NodePortAddresses, nodePort)
	listenersChanged = !ctx.HostListeners.Equal(listeners)
	ctx.LocalAddresses, ctx.NodePortAddresses, ctx.HostListeners = localSet, nodePort, listeners
	return allDirty, listenersChanged
}

// sameAddresses reports whether two reads of the node's addresses give every service port the
// same desired state: the same local addresses and the same NodePort addresses (in any order).
func sameAddresses(localA, localB map[netip.Addr]bool, nodePortA, nodePortB []netip.Addr) bool {
	if len(localA) != len(localB) || len(nodePortA) != len(nodePortB) {
		return false
	}
	for addr := range localA {
		if !localB[addr] {
			return false
		}
	}
	seen := map[netip.Addr]bool{}
	for _, addr := range nodePortA {
		seen[addr] = true
	}
	for _, addr := range nodePortB {
		if !seen[addr] {
			return false
		}
	}
	return true
}

func parsePrefixes(family v1.IPFamily, cidrs []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", c, err)
		}
		if desired.InFamily(family, p.Addr().Unmap()) {
			out = append(out, p.Masked())
		}
	}
	return out, nil
}
