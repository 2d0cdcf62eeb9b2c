package reconcile

import (
	"fmt"

	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
)

// AdditionsFlushAt is how many queued additions make the Reconciler send them before it goes
// on: sixteen round trips of nlmsg.MaxBatch, and a queue of about 100 KB at most.
const AdditionsFlushAt = 1024

// Why additions are queued: a cold start creates every virtual server and its real servers. One
// round trip per virtual server and one per its real servers makes twice as many round trips as
// virtual servers; queued and sent together, several virtual servers and their real servers
// share a round trip (the kernel handles one datagram's requests in order, so a real
// server finds the virtual server added just before it). A round trip costs more than the
// request it carries in an emulated guest and on nodes with speculative-execution mitigations.
//
// Only additions are queued. An update or a deletion concerns an object in the cache, which
// no queued addition can be (a virtual server is queued only when the cache lacks it, a real
// server only when its virtual server's cached set lacks it), so their order does not matter.
// The cache learns of an addition only once the kernel took it. A sync that fails before the
// queue is sent drops the queue: the kernel and the cache both lack its additions.

// queueVirtualServer queues the addition of vs with its real servers.
func (r *Reconciler) queueVirtualServer(vs kipvs.VirtualServer, rss []kipvs.RealServer) error {
	r.additions = append(r.additions, kipvs.VirtualServerAddition(vs))
	return r.queueRealServers(vs.Key, rss)
}

// queueRealServers queues the addition of real servers to the virtual server with key k.
func (r *Reconciler) queueRealServers(k kipvs.Key, rss []kipvs.RealServer) error {
	for _, rs := range rss {
		r.additions = append(r.additions, kipvs.RealServerAddition(k, rs))
	}
	if len(r.additions) >= AdditionsFlushAt {
		return r.flushAdditions()
	}
	return nil
}

// flushAdditions sends the queued additions and caches those the kernel took. It returns the
// first refusal (the rest were still made), or the failed round trip's error: then which were
// made is unknown, and the caller's error makes the next sync read the kernel again.
func (r *Reconciler) flushAdditions() error {
	adds := r.additions
	r.additions = r.additions[:0]
	if len(adds) == 0 {
		return nil
	}
	var refused map[int]error // refusals are rare: no allocation without one
	err := r.ipvs.Add(adds, func(i int, err error) {
		if refused == nil {
			refused = map[int]error{}
		}
		refused[i] = err
	})
	if err != nil {
		return err
	}
	var first error
	for i, a := range adds {
		if err, ok := refused[i]; ok {
			if first == nil {
				first = fmt.Errorf("adding %s: %w", a, err)
			}
			continue
		}
		k := a.VirtualServer.Key
		if !a.IsRealServer {
			n := 0
			for j := i + 1; j < len(adds) && adds[j].IsRealServer && adds[j].VirtualServer.Key == k; j++ {
				n++
			}
			r.cache.vs[k] = &cachedVS{vs: a.VirtualServer, rs: newRealServerSet(n)}
			continue
		}
		// The cache lacks the virtual server only when the kernel refused its addition and
		// then took the real server: it existed already, unknown to the cache. The refusal
		// makes the next sync read the kernel again, which learns both.
		if have := r.cache.vs[k]; have != nil {
			have.rs.put(a.RealServer)
		}
	}
	return first
}
