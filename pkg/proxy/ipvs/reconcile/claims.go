package reconcile

import (
	"net/netip"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/kubernetes/pkg/proxy"

	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/desired"
)

// Claims is the desired state of one family summed over every service port. Service ports
// share objects (a cluster IP bound once for every port of a service, the same NodePort ipset
// entry), so each object is counted by how many service ports claim it. Replacing one service
// port's state marks exactly the objects it touched as dirty; the Reconciler looks at nothing
// else, which is what makes a sync cost O(changed objects).
type Claims struct {
	ports map[proxy.ServicePortName]*portClaim

	// vs has, per virtual server, the service ports that want it and what each wants. Two
	// services asking for the same address:port is a conflict: the Service whose cluster IP
	// it is wins (the guard refuses cluster IPs as external addresses; this holds even if it
	// did not), then the lowest name, so the outcome does not depend on the order events
	// arrived in. A slice and not a map: nearly every virtual server has one owner, and a map
	// per virtual server is the larger part of the claims' memory on a large node
	// (docs/performance.md).
	vs       map[kipvs.Key][]vsClaim
	bindings map[netip.Addr]int
	entries  map[string]map[string]int
	// blocked counts load balancer VIPs the node must not reach (KUBE-IPVS-OUT-FILTER).
	blocked map[kipvs.Key]int

	dirtyVS       sets.Set[kipvs.Key]
	dirtyBindings sets.Set[netip.Addr]
	dirtyEntries  map[string]sets.Set[string]
	// setsChangedEmptiness records that a set went from empty to non-empty or back, which
	// changes the iptables rules.
	setsChangedEmptiness bool
	blockedChanged       bool
}

// vsClaim is one service port's wish for a virtual server; own marks the virtual server of
// the port's own cluster IP.
type vsClaim struct {
	name  proxy.ServicePortName
	state *desired.VirtualServerState
	own   bool
}

type portClaim struct {
	state   desired.ServicePortState
	blocked []kipvs.Key
}

func NewClaims() *Claims {
	return &Claims{
		ports:         map[proxy.ServicePortName]*portClaim{},
		vs:            map[kipvs.Key][]vsClaim{},
		bindings:      map[netip.Addr]int{},
		entries:       map[string]map[string]int{},
		blocked:       map[kipvs.Key]int{},
		dirtyVS:       sets.New[kipvs.Key](),
		dirtyBindings: sets.New[netip.Addr](),
		dirtyEntries:  map[string]sets.Set[string]{},
	}
}

// Set replaces the state of one service port whose cluster IP is clusterIP.
func (c *Claims) Set(name proxy.ServicePortName, clusterIP netip.Addr, st desired.ServicePortState, blocked []kipvs.Key) {
	c.Remove(name)
	pc := &portClaim{state: st, blocked: blocked}
	c.ports[name] = pc
	for i := range st.VirtualServers {
		v := &st.VirtualServers[i]
		own := clusterIP.IsValid() && v.VirtualServer.Key.Address == clusterIP
		c.vs[v.VirtualServer.Key] = claimVS(c.vs[v.VirtualServer.Key], vsClaim{name, v, own})
		c.dirtyVS.Insert(v.VirtualServer.Key)
	}
	for _, a := range st.Bindings {
		c.bindings[a]++
		c.dirtyBindings.Insert(a)
	}
	for set, entries := range st.SetEntries {
		counts := c.entries[set]
		if counts == nil {
			counts = map[string]int{}
			c.entries[set] = counts
		}
		if len(counts) == 0 && len(entries) > 0 {
			c.setsChangedEmptiness = true
		}
		for _, e := range entries {
			counts[e]++
			c.markEntry(set, e)
		}
	}
	for _, k := range blocked {
		if c.blocked[k] == 0 {
			c.blockedChanged = true
		}
		c.blocked[k]++
	}
}

// Remove forgets one service port's state.
func (c *Claims) Remove(name proxy.ServicePortName) {
	pc, ok := c.ports[name]
	if !ok {
		return
	}
	delete(c.ports, name)
	for _, v := range pc.state.VirtualServers {
		k := v.VirtualServer.Key
		if owners := unclaimVS(c.vs[k], name); len(owners) == 0 {
			delete(c.vs, k)
		} else {
			c.vs[k] = owners
		}
		c.dirtyVS.Insert(k)
	}
	for _, a := range pc.state.Bindings {
		if c.bindings[a]--; c.bindings[a] <= 0 {
			delete(c.bindings, a)
		}
		c.dirtyBindings.Insert(a)
	}
	for set, entries := range pc.state.SetEntries {
		counts := c.entries[set]
		for _, e := range entries {
			if counts[e]--; counts[e] <= 0 {
				delete(counts, e)
			}
			c.markEntry(set, e)
		}
		if len(entries) > 0 && len(counts) == 0 {
			c.setsChangedEmptiness = true
		}
	}
	for _, k := range pc.blocked {
		if c.blocked[k]--; c.blocked[k] <= 0 {
			delete(c.blocked, k)
			c.blockedChanged = true
		}
	}
}

// claimVS records o among a virtual server's owners. A service port that lists the same
// virtual server twice owns it once, with what it listed last.
func claimVS(owners []vsClaim, o vsClaim) []vsClaim {
	for i := range owners {
		if owners[i].name == o.name {
			owners[i] = o
			return owners
		}
	}
	return append(owners, o)
}

// unclaimVS removes name from a virtual server's owners.
func unclaimVS(owners []vsClaim, name proxy.ServicePortName) []vsClaim {
	for i := range owners {
		if owners[i].name == name {
			last := len(owners) - 1
			owners[i] = owners[last]
			owners[last] = vsClaim{}
			return owners[:last]
		}
	}
	return owners
}

func (c *Claims) markEntry(set, e string) {
	d := c.dirtyEntries[set]
	if d == nil {
		d = sets.New[string]()
		c.dirtyEntries[set] = d
	}
	d.Insert(e)
}

// virtualServer is the desired state of a virtual server, if any service port wants it.
func (c *Claims) virtualServer(k kipvs.Key) (*desired.VirtualServerState, bool) {
	owners := c.vs[k]
	if len(owners) == 0 {
		return nil, false
	}
	win := owners[0]
	for _, o := range owners[1:] {
		if o.own != win.own {
			if o.own {
				win = o
			}
			continue
		}
		if o.name.String() < win.name.String() {
			win = o
		}
	}
	return win.state, true
}

func (c *Claims) bound(a netip.Addr) bool { return c.bindings[a] > 0 }

func (c *Claims) hasEntry(set, e string) bool { return c.entries[set][e] > 0 }

// NonEmpty reports whether any service port claims an entry of the named set.
func (c *Claims) NonEmpty(set string) bool { return len(c.entries[set]) > 0 }

// BlockedKeys are the load balancer VIPs the node must not reach, in no order.
func (c *Claims) BlockedKeys() []kipvs.Key {
	out := make([]kipvs.Key, 0, len(c.blocked))
	for k := range c.blocked {
		out = append(out, k)
	}
	return out
}

// Ports are the service ports with a claimed state.
func (c *Claims) Ports() sets.Set[proxy.ServicePortName] { return sets.KeySet(c.ports) }

// RulesInputsChanged reports whether, since ClearDirty, a set went from empty to non-empty or
// back or the blocked VIPs changed: either changes the iptables rules.
func (c *Claims) RulesInputsChanged() bool { return c.setsChangedEmptiness || c.blockedChanged }

// ClearDirty forgets what changed, after an apply that wrote it.
func (c *Claims) ClearDirty() {
	c.dirtyVS = sets.New[kipvs.Key]()
	c.dirtyBindings = sets.New[netip.Addr]()
	c.dirtyEntries = map[string]sets.Set[string]{}
	c.setsChangedEmptiness = false
	c.blockedChanged = false
}
