package ipvs

import (
	"hash/fnv"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/types"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/desired"
)

// Every node's kube-proxy sees every Service and makes the same decision about most of what
// the policies refuse, so an Event from each would be N Events on an N-node cluster for one
// bad Service. A decision every node makes alike is reported by one node, chosen per Service
// by rendezvous hashing over the Nodes this proxier knows: the same node on every node's
// reckoning, spread over the cluster, and a new choice only for the Services of a node that
// comes or goes. A decision that depends on this node (a host process's port on its address)
// is reported by this node, naming it.

const (
	// maxEventNote is the apiserver's limit on an Event's note (events.k8s.io/v1); a longer
	// one is refused and the Event lost.
	maxEventNote = 1024
	// maxEventValue and maxLoggedValue bound a value quoted from a Service (an annotation
	// can be 256 KiB).
	maxEventValue  = 128
	maxLoggedValue = 1024
)

// reportedPerNode reasons depend on this node; every other decision is the cluster's.
func reportedPerNode(r desired.Reason) bool { return r == desired.ReasonHostListener }

// decisionEvent emits the Event of a new decision, on this node if it is the one to report it.
func (p *Proxier) decisionEvent(svc types.NamespacedName, d desired.AddressDecision, reason, note string) {
	if reportedPerNode(d.Reason) {
		p.serviceEvent(svc, reason, note+" (node "+p.nodeName+")")
		return
	}
	// The owner of a node address does not refuse it: it cannot be the reporter.
	exclude := ""
	if d.Reason == desired.ReasonNodeAddress {
		exclude = d.Detail
	}
	if p.policy.reporter(svc, exclude) != p.nodeName {
		return
	}
	p.serviceEvent(svc, reason, note)
}

// reporter is the node that reports the cluster-wide decisions about svc.
func (s *policyState) reporter(svc types.NamespacedName, exclude string) string {
	key := string(s.uids[svc])
	if key == "" {
		key = svc.String()
	}
	best, bestScore := "", uint64(0)
	consider := func(node string) {
		if node == exclude {
			return
		}
		h := fnv.New64a()
		h.Write([]byte(key))
		h.Write([]byte{0})
		h.Write([]byte(node))
		if score := h.Sum64(); best == "" || score > bestScore || (score == bestScore && node < best) {
			best, bestScore = node, score
		}
	}
	consider(s.nodeName)
	for _, node := range s.addrs.nodeNames {
		if node != s.nodeName {
			consider(node)
		}
	}
	if best == "" {
		return s.nodeName
	}
	return best
}

// shorten cuts s to at most n bytes on a character boundary, marking the cut.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "..."
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}
