package reconcile

import (
	"net/netip"

	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
)

// rsSetIndexed is the size past which a realServerSet keeps an index: below it a linear scan
// of a few cache lines is as fast as a map lookup.
const rsSetIndexed = 16

// realServerSet is the cached real servers of one virtual server, by address and port. Most
// virtual servers have a handful, so it is a slice: a Go map per virtual server costs several
// times as much memory, and was the largest part of the kernel cache on a large node
// (docs/performance.md). Past rsSetIndexed entries an index keeps lookups constant.
// The zero value is an empty set.
type realServerSet struct {
	list  []kipvs.RealServer
	index map[netip.AddrPort]int // position in list; nil while the set is small
}

// newRealServerSet returns an empty set with room for n real servers.
func newRealServerSet(n int) realServerSet {
	return realServerSet{list: make([]kipvs.RealServer, 0, n)}
}

func (s *realServerSet) len() int { return len(s.list) }

// all is the set's real servers in no particular order. The caller must not modify the slice,
// and a put or remove invalidates it.
func (s *realServerSet) all() []kipvs.RealServer { return s.list }

func (s *realServerSet) find(id netip.AddrPort) int {
	if s.index != nil {
		if i, ok := s.index[id]; ok {
			return i
		}
		return -1
	}
	for i := range s.list {
		if rsID(s.list[i]) == id {
			return i
		}
	}
	return -1
}

// get returns the real server at id's address and port.
func (s *realServerSet) get(id netip.AddrPort) (kipvs.RealServer, bool) {
	if i := s.find(id); i >= 0 {
		return s.list[i], true
	}
	return kipvs.RealServer{}, false
}

// put adds rs, or replaces the real server at its address and port.
func (s *realServerSet) put(rs kipvs.RealServer) {
	id := rsID(rs)
	if i := s.find(id); i >= 0 {
		s.list[i] = rs
		return
	}
	s.list = append(s.list, rs)
	switch {
	case s.index != nil:
		s.index[id] = len(s.list) - 1
	case len(s.list) > rsSetIndexed:
		s.index = make(map[netip.AddrPort]int, len(s.list))
		for i := range s.list {
			s.index[rsID(s.list[i])] = i
		}
	}
}

// remove deletes the real server at id's address and port, if any. The last element takes its
// place, so removal is constant time.
func (s *realServerSet) remove(id netip.AddrPort) {
	i := s.find(id)
	if i < 0 {
		return
	}
	last := len(s.list) - 1
	if i != last {
		s.list[i] = s.list[last]
		if s.index != nil {
			s.index[rsID(s.list[i])] = i
		}
	}
	s.list[last] = kipvs.RealServer{}
	s.list = s.list[:last]
	if s.index != nil {
		delete(s.index, id)
	}
}
