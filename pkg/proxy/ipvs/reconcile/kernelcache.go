package reconcile

import (
	"net/netip"

	"k8s.io/apimachinery/pkg/util/sets"

	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/desired"
)

// kernelCache is what this proxier believes the kernel holds for its family: what it last
// read back, plus every write since that succeeded. It is reloaded from the kernel on start,
// after any failed write, and (cheaply, see Reconciler.load) every syncPeriod, so that a
// tampered kernel is repaired.
type kernelCache struct {
	linkPresent bool
	vs          map[kipvs.Key]*cachedVS
	bindings    sets.Set[netip.Addr]
	// sets holds our sets of this family by name; a missing key is a missing set.
	sets map[string]sets.Set[string]
	// iptables is the text last restored; nil means unknown (restore on the next reconcile).
	iptables []byte
	// missingJumps are the jump rules the last read of the tables did not find; jumpsRead
	// says whether the tables were read at all (apply needs to know before it inserts any).
	missingJumps []desired.JumpRule
	jumpsRead    bool
	// draining are virtual servers holding weight-0 real servers that wait for their
	// connections to end (graceful termination).
	draining sets.Set[kipvs.Key]
}

type cachedVS struct {
	vs kipvs.VirtualServer
	rs realServerSet
}

func newKernelCache() *kernelCache {
	return &kernelCache{
		vs:       map[kipvs.Key]*cachedVS{},
		bindings: sets.New[netip.Addr](),
		sets:     map[string]sets.Set[string]{},
		draining: sets.New[kipvs.Key](),
	}
}

func rsID(rs kipvs.RealServer) netip.AddrPort { return netip.AddrPortFrom(rs.Address, rs.Port) }
