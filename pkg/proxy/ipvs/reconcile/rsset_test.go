package reconcile

import (
	"fmt"
	"net/netip"
	"sort"
	"testing"

	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
)

// TestRealServerSet drives a realServerSet and a map side by side through puts, replacements
// and removals, across the size where the set starts keeping an index, and wants the same
// contents after every step.
func TestRealServerSet(t *testing.T) {
	rs := func(i, weight int) kipvs.RealServer {
		return kipvs.RealServer{Address: netip.MustParseAddr(fmt.Sprintf("10.244.0.%d", i%7+1)), Port: uint16(8000 + i), Weight: weight}
	}
	var s realServerSet
	want := map[netip.AddrPort]kipvs.RealServer{}
	check := func(step string) {
		t.Helper()
		if s.len() != len(want) {
			t.Fatalf("%s: len %d, want %d", step, s.len(), len(want))
		}
		var got, exp []string
		for _, r := range s.all() {
			got = append(got, fmt.Sprintf("%s/%d", r, r.Weight))
		}
		for id, r := range want {
			exp = append(exp, fmt.Sprintf("%s/%d", r, r.Weight))
			if g, ok := s.get(id); !ok || g != r {
				t.Fatalf("%s: get(%s) = %v, %v; want %v", step, id, g, ok, r)
			}
		}
		sort.Strings(got)
		sort.Strings(exp)
		if fmt.Sprint(got) != fmt.Sprint(exp) {
			t.Fatalf("%s: holds %v, want %v", step, got, exp)
		}
	}
	n := 3 * rsSetIndexed
	for i := 0; i < n; i++ {
		s.put(rs(i, 1))
		want[rsID(rs(i, 1))] = rs(i, 1)
		check(fmt.Sprintf("put %d", i))
	}
	if s.index == nil {
		t.Fatalf("no index with %d real servers", n)
	}
	for i := 0; i < n; i += 3 {
		s.put(rs(i, 0)) // same address and port: a replacement, not a second entry
		want[rsID(rs(i, 0))] = rs(i, 0)
		check(fmt.Sprintf("reweigh %d", i))
	}
	for _, i := range []int{0, n - 1, n / 2, 1, n - 2} {
		s.remove(rsID(rs(i, 1)))
		delete(want, rsID(rs(i, 1)))
		check(fmt.Sprintf("remove %d", i))
	}
	s.remove(rsID(rs(n+5, 1))) // absent: nothing happens
	check("remove absent")
	for i := 0; i < n; i++ {
		s.remove(rsID(rs(i, 1)))
		delete(want, rsID(rs(i, 1)))
		check(fmt.Sprintf("drain %d", i))
	}
	if _, ok := s.get(rsID(rs(3, 1))); ok {
		t.Fatalf("empty set finds a real server")
	}
}
