package reconcile

import (
	"errors"
	"fmt"
	"hash/fnv"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"

	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/netdev"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/desired"
)

// Load reads the kernel into the cache, as planLoad says: reload reads everything (the start,
// after a failure); a periodic verification reads what the schedule (schedule.go) picks.
func (r *Reconciler) Load(reload bool) error {
	plan := planLoad(r.window, reload, r.knownTableSize())
	r.window++
	if !plan.wholeTable {
		same, err := r.windowMatchesCache(plan)
		if err != nil {
			return err
		}
		if same {
			// The cached virtual servers and addresses stand; the sets and rules are read again.
			rest, err := r.readSetsAndRules(plan.listEntries)
			if err != nil {
				return err
			}
			rest.into(r.cache)
			r.setsListed = rest.listed
			return nil
		}
		klog.V(2).InfoS("IPVS real servers differ from the cache; reading the whole table", "ipFamily", r.family)
	}
	return r.loadTable(plan)
}

// knownTableSize is the number of virtual servers in the kernel as far as this family knows:
// the last whole-table read saw tableSize, and this family may have added its own since (at a
// cold start that read saw none).
func (r *Reconciler) knownTableSize() int { return max(r.tableSize, len(r.cache.vs)) }

// windowMatchesCache reads the real servers of the period's window of cached virtual servers
// and reports whether the kernel holds exactly the cached ones. A virtual server removed by
// hand shows here as one without real servers (the kernel answers that dump with nothing).
// It stops at the first difference: the whole-table read that follows reads the window again.
func (r *Reconciler) windowMatchesCache(plan loadPlan) (bool, error) {
	window, windows := plan.window(r.knownTableSize())
	for k, have := range r.cache.vs {
		if WindowOf(k, windows) != window {
			continue
		}
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

// loadTable reads the whole table: addresses, virtual servers, the real servers the plan
// picks, then the sets and rules; what it read becomes the cache.
func (r *Reconciler) loadTable(plan loadPlan) error {
	c := newKernelCache()
	c.iptables = r.cache.iptables

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

	vss, err := r.ipvs.ListVirtualServers()
	if err != nil {
		return fmt.Errorf("listing IPVS virtual servers: %w", err)
	}
	window, windows := plan.window(len(vss))
	for _, vs := range vss {
		if !r.inFamily(vs.Address) {
			continue
		}
		cv := &cachedVS{vs: vs}
		old := r.cache.vs[vs.Key]
		if plan.allRealServers || old == nil || WindowOf(vs.Key, windows) == window {
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
	rest, err := r.readSetsAndRules(plan.listEntries)
	if err != nil {
		return err
	}
	rest.into(c)
	r.cache = c
	r.setsListed = rest.listed
	r.tableSize = len(vss)
	r.full = true
	return nil
}

// setsAndRules is what every load reads besides the IPVS table and the addresses.
type setsAndRules struct {
	sets map[string]sets.Set[string]
	// listed: sets holds a listing of every entry, not the cached entries kept because the
	// counts matched (the next apply then compares every entry).
	listed bool
	// intact: our chains hold as many rules as the text last restored.
	intact       bool
	missingJumps []desired.JumpRule
}

// into puts what was read into c. The restored text stays cached only while the chains are
// intact: otherwise the next apply restores it.
func (x *setsAndRules) into(c *kernelCache) {
	c.sets = x.sets
	c.missingJumps, c.jumpsRead = x.missingJumps, true
	if !x.intact {
		c.iptables = nil
	}
}

// readSetsAndRules reads our sets (listing every entry when listEntries) and the iptables
// rules, comparing the rules with the text the cache last restored.
func (r *Reconciler) readSetsAndRules(listEntries bool) (setsAndRules, error) {
	var x setsAndRules
	var err error
	x.sets, x.listed, err = r.loadSets(listEntries)
	if err != nil {
		return x, err
	}

	x.intact, x.missingJumps, err = r.readIPTables(r.cache.iptables)
	if err != nil {
		return x, err
	}
	return x, nil
}

// loadSets reads our sets into c. A full read lists every entry; otherwise one cheap read of
// the sets' entry counts decides: when every set of ours holds as many entries as the cache
// says, the cached entries stay (a periodic verification reads the entries in full once every
// RealServerWindows periods, which catches an entry swapped for another).
//
// A full read starts with the counts too: when every set of ours is empty or absent (the
// other family's sets at a start, a fresh node) there is nothing to list. Only our sets are
// asked for: over netlink another agent's are not even read.
//
// It reports whether the sets are a fresh read (the next apply compares every entry then).
func (r *Reconciler) loadSets(full bool) (map[string]sets.Set[string], bool, error) {
	counts, err := r.ipset.EntryCounts()
	out := map[string]sets.Set[string]{}
	switch {
	case err != nil:
		klog.V(2).InfoS("Reading ipset entry counts failed; reading the entries", "err", err)
	case full && r.oursEmpty(counts):
		for name := range r.ourSets {
			if _, ok := counts[name]; ok {
				out[name] = sets.New[string]()
			}
		}
		return out, true, nil
	case !full && r.setCountsMatch(counts):
		for name, entries := range r.cache.sets {
			out[name] = entries
		}
		return out, false, nil
	}
	contents, err := r.ipset.List(sets.List(r.ourSets)...)
	if err != nil {
		return nil, false, fmt.Errorf("listing ipsets: %w", err)
	}
	for _, s := range contents {
		if r.ourSets.Has(s.Name) {
			out[s.Name] = sets.New(s.Entries...)
		}
	}
	return out, true, nil
}

// oursEmpty reports whether no set of ours holds an entry.
func (r *Reconciler) oursEmpty(counts map[string]int) bool {
	for name := range r.ourSets {
		if counts[name] > 0 {
			return false
		}
	}
	return true
}

// setCountsMatch reports whether the kernel holds exactly the sets of ours the cache holds,
// each with as many entries.
func (r *Reconciler) setCountsMatch(counts map[string]int) bool {
	for name := range r.ourSets {
		cached, inCache := r.cache.sets[name]
		n, inKernel := counts[name]
		if inCache != inKernel || (inCache && n != cached.Len()) {
			return false
		}
	}
	return true
}

func WindowOf(k kipvs.Key, windows uint32) uint32 {
	h := fnv.New32a()
	h.Write(k.Address.AsSlice())
	h.Write([]byte{byte(k.Port >> 8), byte(k.Port), k.Protocol[0]})
	return h.Sum32() % windows
}
