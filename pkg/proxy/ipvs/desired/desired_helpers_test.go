package desired

import (
	"fmt"
	"net/netip"
	"reflect"
	"sort"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/kubernetes/pkg/proxy"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/objects"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/internal/fixture"
)

// The tests build their input the way the proxier will: Service and EndpointSlice objects go
// through upstream's change trackers, so ServicePorts and Endpoints are upstream's own.

// inputs runs the objects through upstream's change trackers for one family.
func inputs(t *testing.T, family v1.IPFamily, svc *v1.Service, slices ...*discovery.EndpointSlice) []ServicePortInput {
	t.Helper()
	sct := proxy.NewServiceChangeTracker(family, nil, nil)
	sct.Update(nil, svc)
	spm := make(proxy.ServicePortMap)
	spm.Update(sct)

	ect := proxy.NewEndpointsChangeTracker(family, fixture.Node, nil, nil)
	for _, s := range slices {
		ect.EndpointSliceUpdate(s, false)
	}
	em := make(proxy.EndpointsMap)
	em.Update(ect)

	var out []ServicePortInput
	for name, sp := range spm {
		out = append(out, ServicePortInput{Name: name, Port: sp, Endpoints: em[name]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name.String() < out[j].Name.String() })
	return out
}

// only is the single service port of a one-port service.
func only(t *testing.T, family v1.IPFamily, svc *v1.Service, slices ...*discovery.EndpointSlice) ServicePortInput {
	t.Helper()
	in := inputs(t, family, svc, slices...)
	if len(in) != 1 {
		t.Fatalf("want 1 service port, got %d", len(in))
	}
	return in[0]
}

func ctx4() *NodeContext {
	return &NodeContext{
		Family:            v1.IPv4Protocol,
		NodeName:          fixture.Node,
		NodePortAddresses: []netip.Addr{fixture.NodeIP4, fixture.NodeIP4b},
		Scheduler:         "rr",
		NodeIP:            fixture.NodeIP4,
		LocalAddresses:    map[netip.Addr]bool{fixture.NodeIP4: true, fixture.NodeIP4b: true},
	}
}

func ctx6() *NodeContext {
	return &NodeContext{
		Family:            v1.IPv6Protocol,
		NodeName:          fixture.Node,
		NodePortAddresses: []netip.Addr{fixture.NodeIP6},
		Scheduler:         "rr",
		NodeIP:            fixture.NodeIP6,
		LocalAddresses:    map[netip.Addr]bool{fixture.NodeIP6: true},
	}
}

// realServersOf finds a virtual server in a state; fails if it is absent.
func realServersOf(t *testing.T, st ServicePortState, key objects.Key) []objects.RealServer {
	t.Helper()
	for _, v := range st.VirtualServers {
		if v.VirtualServer.Key == key {
			return v.RealServers
		}
	}
	t.Fatalf("no virtual server %s in %s", key, dump(st))
	return nil
}

func dump(st ServicePortState) string {
	s := ""
	for _, v := range st.VirtualServers {
		s += fmt.Sprintf("\n  VS %+v -> %v", v.VirtualServer, v.RealServers)
	}
	s += fmt.Sprintf("\n  bindings %v", st.Bindings)
	names := make([]string, 0, len(st.SetEntries))
	for n := range st.SetEntries {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s += fmt.Sprintf("\n  %s %v", n, st.SetEntries[n])
	}
	return s
}

func checkState(t *testing.T, got, want ServicePortState) {
	t.Helper()
	if want.SetEntries == nil {
		want.SetEntries = map[string][]string{}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("state differs\n got:%s\nwant:%s", dump(got), dump(want))
	}
}
