// Package reconcile brings the kernel to the desired state: Claims sums the service ports'
// states with reference counts and marks what changed; the Reconciler compares that with its
// cache of the kernel and writes the difference through the kernel adapters (Apply), re-reads
// the kernel on the verification schedule (Load), drains terminating real servers (Drain), and
// tells which addresses it has bound (Bindings).
package reconcile

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"
	utiliptables "k8s.io/kubernetes/pkg/util/iptables"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipset"
	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/netdev"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/nftgeneration"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/desired"
)

// DummyDevice is the link service addresses are bound to, so the node accepts their packets
// and IPVS sees them in LOCAL_IN.
const DummyDevice = "kube-ipvs0"

// Reconciler writes the difference between the desired state (claims) and its cache of the
// kernel, through the kernel adapters, and keeps the cache true.
type Reconciler struct {
	family       v1.IPFamily
	ipvs         kipvs.Interface
	netdev       netdev.Interface
	ipset        ipset.Interface
	iptables     utiliptables.Interface
	excludeCIDRs []netip.Prefix
	catalogue    []ipset.Set
	ourSets      sets.Set[string]

	cache *kernelCache
	// full makes the next apply compare every object, not just the dirty ones (set by load).
	full bool
	// window is the next group of virtual servers whose real servers a periodic load reads.
	window uint32
	// tableSize is the number of virtual servers (every family) the last whole-table read saw.
	tableSize int
	// setsListed makes the next apply compare every set entry (set by a load that listed them).
	setsListed bool

	// rulesGen reads the nf_tables ruleset generation (nil: none); lastIPTables is the last
	// iptables-save read, reused while the generation stands (iptablesread.go).
	rulesGen     nftgeneration.Reader
	lastIPTables *iptablesRead

	// additions are virtual and real servers to create, sent together (additions.go).
	additions []kipvs.Addition
	// entriesRefused is told how many entries the kernel refused in each ipset write.
	entriesRefused func(n int)
}

// Kernel holds the adapters the reconciler reads and writes through.
type Kernel struct {
	IPVS     kipvs.Interface
	Netdev   netdev.Interface
	IPSet    ipset.Interface
	IPTables utiliptables.Interface
	// RulesetGen reads the nf_tables ruleset generation; nil makes every verification read
	// the iptables rules (iptablesread.go).
	RulesetGen nftgeneration.Reader
}

// New writes through k's adapters; it never touches a virtual server inside exclude that
// nobody wants (--ipvs-exclude-cidrs). entriesRefused (nil: nobody) is told, after each ipset
// write, how many entries the kernel refused (a full set, a value it rejects); the others
// were written.
func New(family v1.IPFamily, k Kernel, exclude []netip.Prefix, entriesRefused func(n int)) *Reconciler {
	if entriesRefused == nil {
		entriesRefused = func(int) {}
	}
	r := &Reconciler{
		family: family, ipvs: k.IPVS, netdev: k.Netdev, ipset: k.IPSet, iptables: k.IPTables, rulesGen: k.RulesetGen,
		entriesRefused: entriesRefused,
		excludeCIDRs:   exclude, catalogue: desired.Sets(family), ourSets: sets.New[string](), cache: newKernelCache(),
	}
	for _, s := range r.catalogue {
		r.ourSets.Insert(s.Name)
	}
	return r
}

func (r *Reconciler) inFamily(a netip.Addr) bool { return desired.InFamily(r.family, a.Unmap()) }

// Apply brings the kernel to the desired state for the dirty objects (every object after a
// load). On error the cache may no longer be true: the caller reloads before trying again.
// The error is an *ApplyError naming the stage that failed.
func (r *Reconciler) Apply(c *Claims, global desired.GlobalState) error {
	logger := klog.Background().WithValues("ipFamily", r.family)
	if !r.cache.linkPresent {
		if _, err := r.netdev.EnsureDummy(DummyDevice); err != nil {
			return &ApplyError{StageAddress, fmt.Errorf("creating %s: %w", DummyDevice, err)}
		}
		r.cache.linkPresent = true
	}

	// An address is the switch that turns a Service on and off. Bound last, after the
	// Service's virtual and real servers, its ipset entries and the iptables rules, a packet
	// to a newly local address finds everything it needs (bound first, the node refused
	// connections to it until IPVS caught up, for as long as a cold start takes).
	// Unbound first, a removed Service stops being local before its objects go.
	vsKeys := c.dirtyVS
	bindKeys := c.dirtyBindings
	if r.full {
		vsKeys = sets.KeySet(c.vs).Union(sets.KeySet(r.cache.vs))
		bindKeys = sets.KeySet(c.bindings).Union(r.cache.bindings)
	}
	var bind, unbind []netip.Addr
	for a := range bindKeys {
		want, have := c.bound(a), r.cache.bindings.Has(a)
		switch {
		case want && !have:
			bind = append(bind, a)
		case !want && have:
			unbind = append(unbind, a)
		}
	}
	if len(unbind) > 0 {
		logger.V(2).Info("Removing addresses", "interface", DummyDevice, "addresses", unbind)
		if err := r.changeBindings(unbind, false); err != nil {
			return &ApplyError{StageAddress, err}
		}
	}

	r.additions = r.additions[:0]
	for k := range vsKeys {
		if err := r.applyVirtualServer(c, k); err != nil {
			return &ApplyError{StageIPVS, err}
		}
	}
	if err := r.flushAdditions(); err != nil {
		return &ApplyError{StageIPVS, err}
	}

	if err := r.applySets(c); err != nil {
		return &ApplyError{StageIPSet, err}
	}

	if !r.cache.jumpsRead {
		return &ApplyError{StageIPTables, errors.New("the iptables tables were not read before the first restore")}
	}
	if !bytes.Equal(global.IPTables, r.cache.iptables) || len(r.cache.missingJumps) > 0 {
		data := desired.WithJumps(global.IPTables, r.cache.missingJumps)
		if err := r.iptables.RestoreAll(data, utiliptables.NoFlushTables, utiliptables.RestoreCounters); err != nil {
			r.cache.iptables = nil
			return &ApplyError{StageIPTables, fmt.Errorf("restoring iptables rules: %w", err)}
		}
		r.cache.iptables = global.IPTables
		r.cache.missingJumps = nil
	}

	if err := r.changeBindings(bind, true); err != nil {
		return &ApplyError{StageAddress, err}
	}

	r.full = false
	r.setsListed = false
	return nil
}

// Stage is the kind of kernel object an apply was writing when it failed.
type Stage string

const (
	StageIPVS     Stage = "ipvs"     // virtual and real servers
	StageIPSet    Stage = "ipset"    // sets and their entries
	StageAddress  Stage = "address"  // kube-ipvs0 and the addresses bound to it
	StageIPTables Stage = "iptables" // the iptables-restore of our chains and jumps
)

// ApplyError is a failed apply: which stage failed, and why. The proxier attributes its
// failure metrics by the stage.
type ApplyError struct {
	Stage Stage
	Err   error
}

func (e *ApplyError) Error() string { return fmt.Sprintf("%s: %v", e.Stage, e.Err) }
func (e *ApplyError) Unwrap() error { return e.Err }

// Bindings are the addresses of this family bound to kube-ipvs0 as far as the cache knows.
func (r *Reconciler) Bindings() []netip.Addr { return r.cache.bindings.UnsortedList() }

// changeBindings binds (or unbinds) addresses to kube-ipvs0 in as few round trips as the
// adapter can make and caches those it changed. It returns the first refusal (the others were
// still changed), or the failed round trip's error: then which changed is unknown, and the
// error makes the next sync read the kernel again.
func (r *Reconciler) changeBindings(addrs []netip.Addr, bind bool) error {
	if len(addrs) == 0 {
		return nil
	}
	change, verb := r.netdev.AddAddresses, "binding"
	if !bind {
		change, verb = r.netdev.DeleteAddresses, "unbinding"
	}
	var refused map[int]bool
	var first error
	err := change(DummyDevice, addrs, func(i int, err error) {
		if refused == nil {
			refused = map[int]bool{}
		}
		refused[i] = true
		if first == nil {
			first = fmt.Errorf("%s %s: %w", verb, DummyDevice, err)
		}
	})
	if err != nil {
		return fmt.Errorf("%s %d addresses of %s: %w", verb, len(addrs), DummyDevice, err)
	}
	for i, a := range addrs {
		switch {
		case refused[i]:
		case bind:
			r.cache.bindings.Insert(a)
		default:
			r.cache.bindings.Delete(a)
		}
	}
	return first
}

// applySets creates missing sets and adds and deletes entries, all in one ipset restore.
func (r *Reconciler) applySets(c *Claims) error {
	var ops []ipset.Op
	for _, s := range r.catalogue {
		if _, ok := r.cache.sets[s.Name]; !ok {
			ops = append(ops, ipset.Op{Kind: ipset.Create, Set: s})
		}
	}
	type change struct {
		set, entry string
		add        bool
	}
	var changes []change
	consider := func(set, e string) {
		want, have := c.hasEntry(set, e), r.cache.sets[set].Has(e)
		if want != have {
			changes = append(changes, change{set, e, want})
		}
	}
	if r.full || r.setsListed {
		for _, s := range r.catalogue {
			for e := range c.entries[s.Name] {
				consider(s.Name, e)
			}
			for e := range r.cache.sets[s.Name] {
				if !c.hasEntry(s.Name, e) {
					consider(s.Name, e)
				}
			}
		}
	} else {
		for set, entries := range c.dirtyEntries {
			for e := range entries {
				consider(set, e)
			}
		}
	}
	for _, ch := range changes {
		kind := ipset.Del
		if ch.add {
			kind = ipset.Add
		}
		ops = append(ops, ipset.Op{Kind: kind, Set: ipset.Set{Name: ch.set}, Entry: ch.entry})
	}
	if len(ops) == 0 {
		return nil
	}
	refused, err := r.applySetOps(ops)
	r.entriesRefused(len(refused))
	if err != nil {
		return fmt.Errorf("updating ipsets: %w", err)
	}
	for i, op := range ops {
		if refused[i] != nil {
			continue
		}
		switch op.Kind {
		case ipset.Create:
			if r.cache.sets[op.Set.Name] == nil {
				r.cache.sets[op.Set.Name] = sets.New[string]()
			}
		case ipset.Add:
			r.cache.sets[op.Set.Name].Insert(op.Entry)
		case ipset.Del:
			r.cache.sets[op.Set.Name].Delete(op.Entry)
		}
	}
	return nil
}

// applyVirtualServer reconciles one virtual server and its real servers.
func (r *Reconciler) applyVirtualServer(c *Claims, k kipvs.Key) error {
	wantVS, want := c.virtualServer(k)
	have := r.cache.vs[k]
	if !want {
		if have == nil || desired.IsExcluded(r.excludeCIDRs, k.Address) {
			return nil
		}
		return r.retireVirtualServer(have)
	}
	if have == nil {
		return r.queueVirtualServer(wantVS.VirtualServer, wantVS.RealServers)
	}
	if have.vs != wantVS.VirtualServer {
		if err := r.ipvs.UpdateVirtualServer(wantVS.VirtualServer); err != nil {
			return fmt.Errorf("updating virtual server %s: %w", k, err)
		}
		have.vs = wantVS.VirtualServer
	}

	var adds []kipvs.RealServer
	for _, rs := range wantVS.RealServers {
		id := rsID(rs)
		cur, ok := have.rs.get(id)
		switch {
		case !ok:
			adds = append(adds, rs)
		case cur.Weight != rs.Weight:
			// A terminating endpoint that came back, or a weight changed by hand.
			if err := r.ipvs.UpdateRealServer(k, rs); err != nil {
				return fmt.Errorf("updating real server %s of %s: %w", id, k, err)
			}
			have.rs.put(rs)
		}
	}
	wanted := newRealServerSet(len(wantVS.RealServers))
	for _, rs := range wantVS.RealServers {
		wanted.put(rs)
	}
	var leaving []kipvs.RealServer
	for _, rs := range have.rs.all() {
		if _, ok := wanted.get(rsID(rs)); !ok {
			leaving = append(leaving, rs)
		}
	}
	if err := r.queueRealServers(k, adds); err != nil {
		return err
	}
	if len(adds) > 0 && len(leaving) > 0 {
		// The new real servers go in before the old ones stop taking connections (a rolling
		// update replaces them all): the queue is sent now, not at the end of the phase.
		if err := r.flushAdditions(); err != nil {
			return err
		}
	}
	return r.terminate(have, leaving)
}

// retireVirtualServer removes a virtual server nobody wants, after its real servers: TCP ones
// Drain first, so the virtual server goes only once it is empty (as upstream does).
func (r *Reconciler) retireVirtualServer(have *cachedVS) error {
	leaving := append([]kipvs.RealServer(nil), have.rs.all()...)
	if err := r.terminate(have, leaving); err != nil {
		return err
	}
	if have.rs.len() > 0 {
		return nil
	}
	if err := r.ipvs.DeleteVirtualServer(have.vs.Key); err != nil {
		return fmt.Errorf("deleting virtual server %s: %w", have.vs.Key, err)
	}
	delete(r.cache.vs, have.vs.Key)
	r.cache.draining.Delete(have.vs.Key)
	return nil
}

// terminate removes real servers from a virtual server. UDP and SCTP ones go at once (the
// kernel drops their flows on the next packet: expire_nodest_conn). TCP ones first get weight 0,
// so no new connection goes to them, and go once their connections have ended.
func (r *Reconciler) terminate(have *cachedVS, leaving []kipvs.RealServer) error {
	if len(leaving) == 0 {
		return nil
	}
	k := have.vs.Key
	if k.Protocol != kipvs.TCP {
		for _, rs := range leaving {
			if err := r.deleteRealServer(have, rs); err != nil {
				return err
			}
		}
		return nil
	}
	for _, rs := range leaving {
		if rs.Weight == 0 {
			continue
		}
		quiesced := rs
		quiesced.Weight = 0
		if err := r.ipvs.UpdateRealServer(k, quiesced); err != nil {
			return fmt.Errorf("quiescing real server %s of %s: %w", rsID(rs), k, err)
		}
		have.rs.put(quiesced)
	}
	r.cache.draining.Insert(k)
	return r.reapDrained(have)
}

// reapDrained deletes the weight-0 real servers of a virtual server that no connection uses
// any more, and a virtual server nobody wants once it is empty.
func (r *Reconciler) reapDrained(have *cachedVS) error {
	k := have.vs.Key
	status, err := r.ipvs.ListRealServers(k)
	if err != nil {
		return fmt.Errorf("listing real servers of %s: %w", k, err)
	}
	remaining := false
	for _, s := range status {
		id := rsID(s.RealServer)
		cached, ok := have.rs.get(id)
		if !ok || cached.Weight != 0 || s.Weight != 0 {
			continue
		}
		if s.ActiveConnections+s.InactiveConnections > 0 {
			remaining = true
			continue
		}
		if err := r.deleteRealServer(have, cached); err != nil {
			return err
		}
	}
	if !remaining {
		r.cache.draining.Delete(k)
	}
	return nil
}

func (r *Reconciler) deleteRealServer(have *cachedVS, rs kipvs.RealServer) error {
	if err := r.ipvs.DeleteRealServer(have.vs.Key, rs); err != nil {
		return fmt.Errorf("deleting real server %s of %s: %w", rsID(rs), have.vs.Key, err)
	}
	have.rs.remove(rsID(rs))
	return nil
}

// Drain makes progress on graceful termination: weight-0 real servers nobody wants are deleted
// once idle, and virtual servers nobody wants once empty.
func (r *Reconciler) Drain(c *Claims) error {
	for k := range r.cache.draining.Clone() {
		have := r.cache.vs[k]
		if have == nil {
			r.cache.draining.Delete(k)
			continue
		}
		// A weight-0 real server someone wants again had its weight restored by apply, so
		// every weight-0 real server left here is leaving.
		_, want := c.virtualServer(k)
		if err := r.reapDrained(have); err != nil {
			return err
		}
		if !want && have.rs.len() == 0 && !desired.IsExcluded(r.excludeCIDRs, k.Address) {
			if err := r.retireVirtualServer(have); err != nil {
				return err
			}
		}
	}
	return nil
}
