// Package fakecalls counts the calls made to a kernel fake and hands out errors that a test
// injected for the next call of a method. The ipvs, netdev and ipset fakes embed a Recorder, so
// its methods are part of each Fake's API.
package fakecalls

import (
	"fmt"
	"maps"
	"sync"
)

// Recorder is safe for concurrent use.
type Recorder struct {
	mu       sync.Mutex
	isRead   map[string]bool // every read and write method; true for reads
	batch    map[string]bool // methods that only carry other calls (counted, neither read nor write)
	counts   map[string]int
	injected map[string][]error
}

// New returns a Recorder for the given read and write method names, and batch methods: those
// that send several writes in one round trip, each write counted under its own method, so an
// error injected for the batch method is the round trip's failure.
func New(reads, writes []string, batches ...string) *Recorder {
	r := &Recorder{isRead: map[string]bool{}, batch: map[string]bool{}, counts: map[string]int{}, injected: map[string][]error{}}
	for _, m := range batches {
		r.batch[m] = true
	}
	for _, m := range reads {
		r.isRead[m] = true
	}
	for _, m := range writes {
		r.isRead[m] = false
	}
	return r
}

// Call records one call of method and returns the error injected for it, if any.
func (r *Recorder) Call(method string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mustKnow(method)
	r.counts[method]++
	q := r.injected[method]
	if len(q) == 0 {
		return nil
	}
	r.injected[method] = q[1:]
	return q[0]
}

// InjectError makes the next call of method (e.g. "AddVirtualServer") fail with err, without
// changing any state. Several injections for one method are returned in order, one per call.
// It panics on a method name the fake does not have, so a typo cannot make a test pass.
func (r *Recorder) InjectError(method string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mustKnow(method)
	r.injected[method] = append(r.injected[method], err)
}

// Count returns how many times method was called since the last ResetCounts.
func (r *Recorder) Count(method string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mustKnow(method)
	return r.counts[method]
}

// Counts returns a copy of the per-method call counts.
func (r *Recorder) Counts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.counts)
}

// Reads returns the number of calls of read methods.
func (r *Recorder) Reads() int { return r.sum(true) }

// Writes returns the number of calls of write methods.
func (r *Recorder) Writes() int { return r.sum(false) }

// ResetCounts zeroes the counts; injected errors not yet returned are kept.
func (r *Recorder) ResetCounts() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.counts)
}

func (r *Recorder) sum(read bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for m, c := range r.counts {
		if isRead, ok := r.isRead[m]; ok && isRead == read {
			n += c
		}
	}
	return n
}

func (r *Recorder) mustKnow(method string) {
	if _, ok := r.isRead[method]; !ok && !r.batch[method] {
		panic(fmt.Sprintf("fake has no method %q", method))
	}
}
