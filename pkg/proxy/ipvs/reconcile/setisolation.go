package reconcile

import (
	"k8s.io/klog/v2"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipset"
)

// maxIsolationBatches bounds the ipset restores spent finding refused entries after a
// refused batch: a handful of bad entries cost a few dozen restores; a broken ipset tool,
// which refuses everything, must not cost one restore per entry.
const maxIsolationBatches = 64

// applySetOps runs one ipset batch. `ipset restore` stops at the first line the kernel
// refuses (a set that is full, a value it rejects), so one bad entry would keep every entry
// after it out, at every sync. When a line is refused, the set creations run alone (their
// failure is the sync's) and the entries are halved until each refused one is alone; the
// others are applied (with -exist, lines that went in before the failure go in again
// harmlessly). It returns the refused ops by index.
func (r *Reconciler) applySetOps(ops []ipset.Op) (map[int]error, error) {
	err := r.ipset.Apply(ops)
	if _, refusedLine := ipset.RefusedLine(err); !refusedLine {
		// Success, or a failure that is not about one line (no ipset tool): the sync's.
		return nil, err
	}
	n := 0
	for n < len(ops) && ops[n].Kind == ipset.Create {
		n++
	}
	if n > 0 {
		if cerr := r.ipset.Apply(ops[:n]); cerr != nil {
			return nil, cerr
		}
	}
	refused := map[int]error{}
	budget := maxIsolationBatches
	var isolate func(lo, hi int) error
	isolate = func(lo, hi int) error {
		if lo == hi {
			return nil
		}
		if budget == 0 {
			return err
		}
		budget--
		e := r.ipset.Apply(ops[lo:hi])
		_, refusedLine := ipset.RefusedLine(e)
		switch {
		case e == nil:
			return nil
		case !refusedLine:
			return e
		case hi-lo == 1:
			refused[lo] = e
			return nil
		}
		mid := lo + (hi-lo)/2
		if e := isolate(lo, mid); e != nil {
			return e
		}
		return isolate(mid, hi)
	}
	mid := n + (len(ops)-n)/2
	if e := isolate(n, mid); e != nil {
		return nil, e
	}
	if e := isolate(mid, len(ops)); e != nil {
		return nil, e
	}
	if len(refused) == 0 {
		// Every part went in alone: whatever refused the whole batch is gone.
		return nil, nil
	}
	logger := klog.Background().WithValues("ipFamily", r.family)
	for i, e := range refused {
		logger.Error(e, "The kernel refused an ipset entry; the others were written", "set", ops[i].Set.Name, "entry", ops[i].Entry)
	}
	return refused, nil
}
