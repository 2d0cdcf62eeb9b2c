package ipvs

import (
	"fmt"
	"net/netip"
	"reflect"
	"sort"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/kubernetes/pkg/proxy"
	"k8s.io/utils/ptr"

	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
)

// The tests build their input the way the proxier will: Service and EndpointSlice objects go
// through upstream's change trackers, so ServicePorts and Endpoints are upstream's own.

const (
	testNode      = "node-a"
	testNamespace = "ns"
)

var (
	nodeIP4  = netip.MustParseAddr("192.168.0.10")
	nodeIP4b = netip.MustParseAddr("10.0.0.10")
	nodeIP6  = netip.MustParseAddr("fd00:1::10")
)

// service is a ClusterIP service with one TCP port "p" 80 -> 8080, changed by the options.
func service(name, clusterIP string, opts ...func(*v1.Service)) *v1.Service {
	svc := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNamespace},
		Spec: v1.ServiceSpec{
			Type:       v1.ServiceTypeClusterIP,
			ClusterIP:  clusterIP,
			ClusterIPs: []string{clusterIP},
			IPFamilies: []v1.IPFamily{familyOf(clusterIP)},
			Ports: []v1.ServicePort{{
				Name: "p", Port: 80, Protocol: v1.ProtocolTCP, TargetPort: intstr.FromInt32(8080),
			}},
		},
	}
	for _, o := range opts {
		o(svc)
	}
	return svc
}

func familyOf(ip string) v1.IPFamily {
	if netip.MustParseAddr(ip).Is6() {
		return v1.IPv6Protocol
	}
	return v1.IPv4Protocol
}

func nodePortType(nodePort int32) func(*v1.Service) {
	return func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = nodePort
	}
}

func loadBalancerType(nodePort int32, ingress ...v1.LoadBalancerIngress) func(*v1.Service) {
	return func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.Ports[0].NodePort = nodePort
		s.Status.LoadBalancer.Ingress = ingress
	}
}

func externalLocal(healthCheckNodePort int32) func(*v1.Service) {
	return func(s *v1.Service) {
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		s.Spec.HealthCheckNodePort = healthCheckNodePort
	}
}

func internalLocal(s *v1.Service) {
	s.Spec.InternalTrafficPolicy = ptr.To(v1.ServiceInternalTrafficPolicyLocal)
}

func protocol(p v1.Protocol) func(*v1.Service) {
	return func(s *v1.Service) { s.Spec.Ports[0].Protocol = p }
}

func externalIPs(ips ...string) func(*v1.Service) {
	return func(s *v1.Service) { s.Spec.ExternalIPs = ips }
}

// ep is one endpoint of a slice: ready unless told otherwise.
type ep struct {
	ip, node                      string
	notReady, terminating, noServ bool
	zones, nodes                  []string
}

// slice is an EndpointSlice of the service for port "p" 8080 with the service's protocol.
func slice(svc *v1.Service, family v1.IPFamily, eps ...ep) *discovery.EndpointSlice {
	addrType := discovery.AddressTypeIPv4
	if family == v1.IPv6Protocol {
		addrType = discovery.AddressTypeIPv6
	}
	s := &discovery.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name:      svc.Name + "-" + string(addrType),
			Namespace: svc.Namespace,
			Labels:    map[string]string{discovery.LabelServiceName: svc.Name},
		},
		AddressType: addrType,
		Ports: []discovery.EndpointPort{{
			Name: ptr.To("p"), Port: ptr.To[int32](8080), Protocol: ptr.To(svc.Spec.Ports[0].Protocol),
		}},
	}
	for _, e := range eps {
		de := discovery.Endpoint{
			Addresses: []string{e.ip},
			Conditions: discovery.EndpointConditions{
				Ready:       ptr.To(!e.notReady),
				Serving:     ptr.To(!e.noServ),
				Terminating: ptr.To(e.terminating),
			},
		}
		if e.node != "" {
			de.NodeName = ptr.To(e.node)
		}
		if len(e.zones) > 0 || len(e.nodes) > 0 {
			de.Hints = &discovery.EndpointHints{}
			for _, z := range e.zones {
				de.Hints.ForZones = append(de.Hints.ForZones, discovery.ForZone{Name: z})
			}
			for _, n := range e.nodes {
				de.Hints.ForNodes = append(de.Hints.ForNodes, discovery.ForNode{Name: n})
			}
		}
		s.Endpoints = append(s.Endpoints, de)
	}
	return s
}

// inputs runs the objects through upstream's change trackers for one family.
func inputs(t *testing.T, family v1.IPFamily, svc *v1.Service, slices ...*discovery.EndpointSlice) []ServicePortInput {
	t.Helper()
	sct := proxy.NewServiceChangeTracker(family, nil, nil)
	sct.Update(nil, svc)
	spm := make(proxy.ServicePortMap)
	spm.Update(sct)

	ect := proxy.NewEndpointsChangeTracker(family, testNode, nil, nil)
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
		NodeName:          testNode,
		NodePortAddresses: []netip.Addr{nodeIP4, nodeIP4b},
		Scheduler:         "rr",
		NodeIP:            nodeIP4,
		LocalAddresses:    map[netip.Addr]bool{nodeIP4: true, nodeIP4b: true},
	}
}

func ctx6() *NodeContext {
	return &NodeContext{
		Family:            v1.IPv6Protocol,
		NodeName:          testNode,
		NodePortAddresses: []netip.Addr{nodeIP6},
		Scheduler:         "rr",
		NodeIP:            nodeIP6,
		LocalAddresses:    map[netip.Addr]bool{nodeIP6: true},
	}
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func vs(a string, proto kipvs.Protocol, port uint16) kipvs.VirtualServer {
	return kipvs.VirtualServer{Key: kipvs.Key{Address: addr(a), Protocol: proto, Port: port}, Scheduler: "rr"}
}

// rs are real servers on port 8080 with weight 1, in the order the state sorts them.
func rs(ips ...string) []kipvs.RealServer {
	out := make([]kipvs.RealServer, 0, len(ips))
	for _, ip := range ips {
		out = append(out, kipvs.RealServer{Address: addr(ip), Port: 8080, Weight: 1})
	}
	return out
}

// realServersOf finds a virtual server in a state; fails if it is absent.
func realServersOf(t *testing.T, st ServicePortState, key kipvs.Key) []kipvs.RealServer {
	t.Helper()
	for _, v := range st.VirtualServers {
		if v.VirtualServer.Key == key {
			return v.RealServers
		}
	}
	t.Fatalf("no virtual server %s in %s", key, dump(st))
	return nil
}

func key(a string, proto kipvs.Protocol, port uint16) kipvs.Key {
	return kipvs.Key{Address: addr(a), Protocol: proto, Port: port}
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
