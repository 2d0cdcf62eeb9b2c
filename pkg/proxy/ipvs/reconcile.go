package ipvs

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"
	utiliptables "k8s.io/kubernetes/pkg/util/iptables"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipset"
	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/netdev"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/nftgen"
)

// DummyDevice is the link service addresses are bound to, so the node accepts their packets
// and IPVS sees them in LOCAL_IN.
const DummyDevice = "kube-ipvs0"

// realServerWindows: a periodic verification reads the real servers of one virtual server in
// (at least) this many, so tampering with real servers is repaired within this many sync
// periods while a quiet node does not re-read every virtual server every period. The iptables
// chains and the sets' entry counts are verified every period, the virtual servers and
// addresses every tableWindows periods, the sets' entries every entryListPeriods periods.
const realServerWindows = 8

// realServerListsPerPeriod bounds the real-server reads of one periodic verification: a node
// with more than realServerWindows times this many virtual servers verifies them in more
// windows (at 15,000 virtual servers, 30 windows: every real server within 15 minutes at the
// default 30 s period). One read is one netlink dump; without the bound a quiet node of ten
// thousand Services spent most of its CPU listing real servers nobody had touched.
const realServerListsPerPeriod = 512

// rsWindows is the number of windows the real servers of n virtual servers are read in.
func rsWindows(n int) uint32 {
	return uint32(max(realServerWindows, (n+realServerListsPerPeriod-1)/realServerListsPerPeriod))
}

// virtualServersPerTableRead bounds how often a periodic verification reads the whole table:
// every virtual server, every kube-ipvs0 address, and a comparison of all of them with the
// cache. A node with up to this many virtual servers (in the kernel, both families) does so
// every period; a larger one every tableWindows periods, and in between reads only its window
// of real servers (a difference there reads the whole table at once). At 15,000 virtual
// servers the whole-table read was most of a quiet node's CPU (2.5-6 s per period in the lab,
// the other family dumping the same table too); a virtual server or address removed by hand is
// now repaired within 8 periods there (4 minutes at the default 30 s). The bound is a count,
// not a measured cost, so a node's repair time does not depend on how fast its CPU is.
const virtualServersPerTableRead = 2048

// tableWindows is the number of periods between whole-table reads with n virtual servers.
func tableWindows(n int) uint32 {
	return uint32(max(1, (n+virtualServersPerTableRead-1)/virtualServersPerTableRead))
}

// entryListPeriods is the number of periods between listings of every ipset entry (in between,
// the sets' entry counts are compared): realServerWindows on a node with up to
// virtualServersPerTableRead virtual servers, proportionally more on a larger one, whose sets
// hold proportionally more entries (one listing took 6.3 s at 5000 Services in the lab). A
// listing only finds an entry swapped for another; anything added or removed changes a count
// and is listed and repaired at once.
func entryListPeriods(n int) uint32 { return realServerWindows * tableWindows(n) }

// reconciler writes the difference between the desired state (claims) and its cache of the
// kernel, through the kernel adapters, and keeps the cache true.
type reconciler struct {
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
	// iptables-save read, reused while the generation stands (rulesgen.go).
	rulesGen     nftgen.Reader
	lastIPTables *iptablesRead

	// additions are virtual and real servers to create, sent together (additions.go).
	additions []kipvs.Addition

	ops opCounts
	// ph times the steps of the current sync (nil outside a sync).
	ph *phases
}

// opCounts counts kernel round trips: netlink requests and process launches.
type opCounts struct{ reads, writes int }

func newReconciler(family v1.IPFamily, ipvs kipvs.Interface, nd netdev.Interface, is ipset.Interface, ipt utiliptables.Interface, exclude []netip.Prefix) *reconciler {
	r := &reconciler{
		family: family, ipvs: ipvs, netdev: nd, ipset: is, iptables: ipt, excludeCIDRs: exclude,
		catalogue: Sets(family), ourSets: sets.New[string](), cache: newKernelCache(),
	}
	for _, s := range r.catalogue {
		r.ourSets.Insert(s.Name)
	}
	return r
}

func (r *reconciler) inFamily(a netip.Addr) bool { return inFamily(r.family, a.Unmap()) }

// load reads the kernel into the cache. allRealServers reads the whole table and the real
// servers of every virtual server; otherwise (a periodic verification) only the real servers
// of the next window, and the whole table once every tableWindows periods.
func (r *reconciler) load(allRealServers bool) error {
	period := r.window
	r.window++
	if !allRealServers && period%tableWindows(r.knownTableSize()) != 0 {
		same, err := r.windowMatchesCache(period)
		if err != nil {
			return err
		}
		if same {
			// The copy shares the cached virtual servers and addresses, which loadRest does not
			// touch; what it reads replaces the copy's sets and rules.
			c := *r.cache
			return r.loadRest(&c, period, false)
		}
		klog.V(2).InfoS("IPVS real servers differ from the cache; reading the whole table", "ipFamily", r.family)
	}
	return r.loadTable(period, allRealServers)
}

// knownTableSize is the number of virtual servers in the kernel as far as this family knows:
// the last whole-table read saw tableSize, and this family may have added its own since (at a
// cold start that read saw none).
func (r *reconciler) knownTableSize() int { return max(r.tableSize, len(r.cache.vs)) }

// windowMatchesCache reads the real servers of the period's window of cached virtual servers
// and reports whether the kernel holds exactly the cached ones. A virtual server removed by
// hand shows here as one without real servers (the kernel answers that dump with nothing).
// It stops at the first difference: the whole-table read that follows reads the window again.
func (r *reconciler) windowMatchesCache(period uint32) (bool, error) {
	defer r.ph.done("read-ipvs")
	windows := rsWindows(r.knownTableSize())
	window := period % windows
	for k, have := range r.cache.vs {
		if windowOf(k, windows) != window {
			continue
		}
		r.ops.reads++
		rss, err := r.ipvs.ListRealServers(k)
		if err != nil {
			return false, fmt.Errorf("listing real servers of %s: %w", k, err)
		}
		if len(rss) != have.rs.len() {
			return false, nil
		}
		for _, rs := range rss {
			// What apply compares: the address, port and weight.
			if cached, ok := have.rs.get(rsID(rs.RealServer)); !ok || cached.Weight != rs.Weight {
				return false, nil
			}
		}
	}
	return true, nil
}

// loadTable reads the whole table: addresses, virtual servers, the real servers of every
// virtual server (allRealServers) or of the period's window, then the sets and rules.
func (r *reconciler) loadTable(period uint32, allRealServers bool) error {
	c := newKernelCache()
	c.iptables = r.cache.iptables

	r.ops.reads++
	addrs, err := r.netdev.ListAddresses(DummyDevice)
	switch {
	case errors.Is(err, netdev.ErrLinkNotFound):
	case err != nil:
		return fmt.Errorf("listing addresses of %s: %w", DummyDevice, err)
	default:
		c.linkPresent = true
		for _, a := range addrs {
			if r.inFamily(a) {
				c.bindings.Insert(a.Unmap())
			}
		}
	}
	r.ph.done("read-addrs")

	r.ops.reads++
	vss, err := r.ipvs.ListVirtualServers()
	if err != nil {
		return fmt.Errorf("listing IPVS virtual servers: %w", err)
	}
	windows := rsWindows(len(vss))
	window := period % windows
	for _, vs := range vss {
		if !r.inFamily(vs.Address) {
			continue
		}
		cv := &cachedVS{vs: vs}
		old := r.cache.vs[vs.Key]
		if allRealServers || old == nil || windowOf(vs.Key, windows) == window {
			r.ops.reads++
			rss, err := r.ipvs.ListRealServers(vs.Key)
			if err != nil {
				return fmt.Errorf("listing real servers of %s: %w", vs.Key, err)
			}
			cv.rs = newRealServerSet(len(rss))
			for _, rs := range rss {
				cv.rs.put(rs.RealServer)
				if rs.Weight == 0 {
					c.draining.Insert(vs.Key)
				}
			}
		} else {
			cv.rs = old.rs
			if r.cache.draining.Has(vs.Key) {
				c.draining.Insert(vs.Key)
			}
		}
		c.vs[vs.Key] = cv
	}
	r.ph.done("read-ipvs")
	if err := r.loadRest(c, period, allRealServers); err != nil {
		return err
	}
	r.tableSize = len(vss)
	r.full = true
	return nil
}

// loadRest reads the sets and the iptables rules into c, then makes c the cache.
func (r *reconciler) loadRest(c *kernelCache, period uint32, allEntries bool) error {
	listed, err := r.loadSets(c, allEntries || period%entryListPeriods(r.knownTableSize()) == 0)
	if err != nil {
		return err
	}
	r.ph.done("read-ipsets")

	intact, missing, err := r.readIPTables(c.iptables)
	if err != nil {
		return err
	}
	c.missingJumps, c.jumpsRead = missing, true
	if !intact {
		c.iptables = nil
	}
	r.ph.done("read-iptables")
	r.cache = c
	r.setsListed = listed
	return nil
}

// loadSets reads our sets into c. A full read lists every entry; otherwise one cheap read of
// the sets' entry counts decides: when every set of ours holds as many entries as the cache
// says, the cached entries stay (a periodic verification reads the entries in full once every
// realServerWindows periods, which catches an entry swapped for another).
//
// A full read starts with the counts too: when every set of ours is empty or absent (the
// other family's sets at a start, a fresh node) there is nothing to list. Only our sets are
// asked for: over netlink another agent's are not even read.
//
// It reports whether c's sets are a fresh read (the next apply compares every entry then).
func (r *reconciler) loadSets(c *kernelCache, full bool) (bool, error) {
	r.ops.reads++
	counts, err := r.ipset.EntryCounts()
	c.sets = map[string]sets.Set[string]{}
	switch {
	case err != nil:
		klog.V(2).InfoS("Reading ipset entry counts failed; reading the entries", "err", err)
	case full && r.oursEmpty(counts):
		for name := range r.ourSets {
			if _, ok := counts[name]; ok {
				c.sets[name] = sets.New[string]()
			}
		}
		return true, nil
	case !full && r.setCountsMatch(counts):
		for name, entries := range r.cache.sets {
			c.sets[name] = entries
		}
		return false, nil
	}
	r.ops.reads++
	contents, err := r.ipset.List(sets.List(r.ourSets)...)
	if err != nil {
		return false, fmt.Errorf("listing ipsets: %w", err)
	}
	for _, s := range contents {
		if r.ourSets.Has(s.Name) {
			c.sets[s.Name] = sets.New(s.Entries...)
		}
	}
	return true, nil
}

// oursEmpty reports whether no set of ours holds an entry.
func (r *reconciler) oursEmpty(counts map[string]int) bool {
	for name := range r.ourSets {
		if counts[name] > 0 {
			return false
		}
	}
	return true
}

// setCountsMatch reports whether the kernel holds exactly the sets of ours the cache holds,
// each with as many entries.
func (r *reconciler) setCountsMatch(counts map[string]int) bool {
	for name := range r.ourSets {
		cached, inCache := r.cache.sets[name]
		n, inKernel := counts[name]
		if inCache != inKernel || (inCache && n != cached.Len()) {
			return false
		}
	}
	return true
}

func windowOf(k kipvs.Key, windows uint32) uint32 {
	h := fnv.New32a()
	h.Write(k.Address.AsSlice())
	h.Write([]byte{byte(k.Port >> 8), byte(k.Port), k.Protocol[0]})
	return h.Sum32() % windows
}

// readIPTables reads the nat and filter tables. It reports which jump rules are missing,
// and whether each of our chains has as many rules as the text we last restored (restored;
// nil when unknown). Comparing rule counts, not text, avoids depending on how iptables-save
// respells a rule, and still catches a flushed or deleted chain or a deleted rule.
func (r *reconciler) readIPTables(restored []byte) (intact bool, missing []JumpRule, err error) {
	read, err := r.savedIPTables()
	if err != nil {
		return false, nil, err
	}
	if restored == nil {
		return false, read.missing, nil
	}
	for key, n := range ruleCounts(restored) {
		if read.counts[key] != n {
			return false, read.missing, nil
		}
	}
	return true, read.missing, nil
}

// ruleCounts counts "-A CHAIN" lines of our chains per table/chain in iptables-save or
// iptables-restore text.
func ruleCounts(text []byte) map[string]int {
	ours := map[string]bool{}
	for _, c := range kubeChains {
		ours[c.Chain] = true
	}
	counts := map[string]int{}
	table := ""
	for _, line := range strings.Split(string(text), "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
		case strings.HasPrefix(line, ":"):
			if f := strings.Fields(line[1:]); len(f) > 0 && ours[f[0]] {
				counts[table+"/"+f[0]] += 0
			}
		case strings.HasPrefix(line, "-A "):
			if f := strings.Fields(line); len(f) > 1 && ours[f[1]] {
				counts[table+"/"+f[1]]++
			}
		}
	}
	return counts
}

// apply brings the kernel to the desired state for the dirty objects (every object after a
// load). On error the cache may no longer be true: the caller reloads before trying again.
func (r *reconciler) apply(c *claims, global GlobalState) error {
	logger := klog.Background().WithValues("ipFamily", r.family)
	if !r.cache.linkPresent {
		r.ops.writes++
		if _, err := r.netdev.EnsureDummy(DummyDevice); err != nil {
			return fmt.Errorf("creating %s: %w", DummyDevice, err)
		}
		r.cache.linkPresent = true
	}

	// An address is the switch that turns a Service on and off. Bound last, after the
	// Service's virtual and real servers, its ipset entries and the iptables rules, a packet
	// to a newly local address finds everything it needs (bound first, the node refused
	// connections to it until IPVS caught up: a minute at a cold start with 10000 Services).
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
			return err
		}
		r.ph.done("unbind")
	}

	r.additions = r.additions[:0]
	for k := range vsKeys {
		if err := r.applyVirtualServer(c, k); err != nil {
			return err
		}
	}
	if err := r.flushAdditions(); err != nil {
		return err
	}
	r.ph.done("ipvs")

	if err := r.applySets(c); err != nil {
		return err
	}
	r.ph.done("ipsets")

	if !r.cache.jumpsRead {
		return errors.New("the iptables tables were not read before the first restore")
	}
	if !bytes.Equal(global.IPTables, r.cache.iptables) || len(r.cache.missingJumps) > 0 {
		r.ops.writes++
		data := withJumps(global.IPTables, r.cache.missingJumps)
		if err := r.iptables.RestoreAll(data, utiliptables.NoFlushTables, utiliptables.RestoreCounters); err != nil {
			r.cache.iptables = nil
			return fmt.Errorf("restoring iptables rules: %w", err)
		}
		r.cache.iptables = global.IPTables
		r.cache.missingJumps = nil
	}
	r.ph.done("iptables")

	if err := r.changeBindings(bind, true); err != nil {
		return err
	}
	r.ph.done("bind")

	r.full = false
	r.setsListed = false
	return nil
}

// changeBindings binds (or unbinds) addresses to kube-ipvs0 in as few round trips as the
// adapter can make and caches those it changed. It returns the first refusal (the others were
// still changed), or the failed round trip's error: then which changed is unknown, and the
// error makes the next sync read the kernel again.
func (r *reconciler) changeBindings(addrs []netip.Addr, bind bool) error {
	if len(addrs) == 0 {
		return nil
	}
	change, verb := r.netdev.AddAddresses, "binding"
	if !bind {
		change, verb = r.netdev.DeleteAddresses, "unbinding"
	}
	r.ops.writes += len(addrs)
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
func (r *reconciler) applySets(c *claims) error {
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
	ipsetEntriesRefused.WithLabelValues(string(r.family)).Set(float64(len(refused)))
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
func (r *reconciler) applyVirtualServer(c *claims, k kipvs.Key) error {
	desired, want := c.virtualServer(k)
	have := r.cache.vs[k]
	if !want {
		if have == nil || IsExcluded(r.excludeCIDRs, k.Address) {
			return nil
		}
		return r.retireVirtualServer(have)
	}
	if have == nil {
		return r.queueVirtualServer(desired.VirtualServer, desired.RealServers)
	}
	if have.vs != desired.VirtualServer {
		r.ops.writes++
		if err := r.ipvs.UpdateVirtualServer(desired.VirtualServer); err != nil {
			return fmt.Errorf("updating virtual server %s: %w", k, err)
		}
		have.vs = desired.VirtualServer
	}

	var adds []kipvs.RealServer
	for _, rs := range desired.RealServers {
		id := rsID(rs)
		cur, ok := have.rs.get(id)
		switch {
		case !ok:
			adds = append(adds, rs)
		case cur.Weight != rs.Weight:
			// A terminating endpoint that came back, or a weight changed by hand.
			r.ops.writes++
			if err := r.ipvs.UpdateRealServer(k, rs); err != nil {
				return fmt.Errorf("updating real server %s of %s: %w", id, k, err)
			}
			have.rs.put(rs)
		}
	}
	wanted := newRealServerSet(len(desired.RealServers))
	for _, rs := range desired.RealServers {
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
// drain first, so the virtual server goes only once it is empty (as upstream does).
func (r *reconciler) retireVirtualServer(have *cachedVS) error {
	leaving := append([]kipvs.RealServer(nil), have.rs.all()...)
	if err := r.terminate(have, leaving); err != nil {
		return err
	}
	if have.rs.len() > 0 {
		return nil
	}
	r.ops.writes++
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
func (r *reconciler) terminate(have *cachedVS, leaving []kipvs.RealServer) error {
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
		r.ops.writes++
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
func (r *reconciler) reapDrained(have *cachedVS) error {
	k := have.vs.Key
	r.ops.reads++
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

func (r *reconciler) deleteRealServer(have *cachedVS, rs kipvs.RealServer) error {
	r.ops.writes++
	if err := r.ipvs.DeleteRealServer(have.vs.Key, rs); err != nil {
		return fmt.Errorf("deleting real server %s of %s: %w", rsID(rs), have.vs.Key, err)
	}
	have.rs.remove(rsID(rs))
	return nil
}

// drain makes progress on graceful termination: weight-0 real servers nobody wants are deleted
// once idle, and virtual servers nobody wants once empty.
func (r *reconciler) drain(c *claims) error {
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
		if !want && have.rs.len() == 0 && !IsExcluded(r.excludeCIDRs, k.Address) {
			if err := r.retireVirtualServer(have); err != nil {
				return err
			}
		}
	}
	return nil
}
