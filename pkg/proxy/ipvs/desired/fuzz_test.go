package desired

import (
	"net/netip"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/kubernetes/pkg/proxy"
	"k8s.io/utils/ptr"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipset"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/internal/fixture"
)

// The fuzz targets feed the policies and the desired state values a Service author or a
// broken controller can write: the apiserver validates some fields of a Service and few of
// an EndpointSlice, and none of the fork's annotation. Their seed corpora (testdata/fuzz) run
// as regression tests in every `go test`; `make fuzz` explores further.

// FuzzDecideLBBinding: any annotation values and ipMode give a decision, and a valid
// annotation always decides.
func FuzzDecideLBBinding(f *testing.F) {
	f.Add("true", true, "", false, "VIP", true, true)
	f.Add("false", true, "true", true, "Proxy", true, false)
	f.Add("TRUE", true, "yes", true, "", false, true)
	f.Add(strings.Repeat("x", 300), true, "true", true, "Unknown", true, false)
	f.Fuzz(func(t *testing.T, ann string, hasAnn bool, tke string, hasTKE bool, mode string, hasMode, def bool) {
		in := LBBindingInput{Default: def}
		if hasAnn {
			in.Annotation = &ann
		}
		if hasTKE {
			in.TKEPreventLoopback = &tke
		}
		if hasMode {
			m := v1.LoadBalancerIPMode(mode)
			in.IPMode = &m
		}
		d := DecideLBBinding(in)
		switch {
		case hasAnn && (ann == "true" || ann == "false"):
			if d.Reason != LBBindingByAnnotation || d.Bind != (ann == "true") || d.InvalidAnnotation {
				t.Fatalf("annotation %q: decision %+v", ann, d)
			}
		case hasAnn:
			if !d.InvalidAnnotation {
				t.Fatalf("annotation %q not reported invalid: %+v", ann, d)
			}
		}
		if d.Reason == "" {
			t.Fatalf("no reason: %+v", d)
		}
	})
}

// FuzzGuardAddress: any address text and port give a verdict; an address it lets through is
// a valid unicast address of the family that is no cluster IP, no service CIDR address, no
// other node's, no apiserver's and not protected.
func FuzzGuardAddress(f *testing.F) {
	f.Add("10.96.0.1", 443, "TCP", false, true)
	f.Add("192.168.0.10", 10250, "TCP", true, false)
	f.Add("::ffff:192.0.2.1", 80, "UDP", false, false)
	f.Add("010.001.002.003", 80, "TCP", false, false)
	f.Add(" 203.0.113.7 ", 70000, "SCTP", true, true)
	f.Add("fe80::1%eth0", -1, "", false, false)
	f.Add("255.255.255.255", 0, "TCP", false, false)
	f.Fuzz(func(t *testing.T, raw string, port int, proto string, lb, restrict bool) {
		ctx := fuzzNodeContext(restrict)
		src := SourceExternalIP
		if lb {
			src = SourceLoadBalancer
		}
		v := GuardAddress(ctx, AddressCheck{Source: src, Address: raw, Port: port, Protocol: v1.Protocol(proto), ServiceFamilies: []v1.IPFamily{v1.IPv4Protocol}})
		if v.Reason != "" {
			return
		}
		a := v.Addr
		switch {
		case !a.IsValid() || !a.Is4():
			t.Fatalf("%q let through as %v: not an IPv4 address", raw, a)
		case a.IsLoopback() || a.IsUnspecified() || a.IsMulticast() || a.IsLinkLocalUnicast():
			t.Fatalf("%q let through: special address %v", raw, a)
		case ctx.ClusterIPs[a] > 0 || ctx.ServiceCIDRs[0].Contains(a):
			t.Fatalf("%q let through: a service address", raw)
		case ctx.APIServerAddresses[a] && !ctx.LocalAddresses[a]:
			t.Fatalf("%q let through: the apiserver's", raw)
		case ctx.ProtectedCIDRs[0].Contains(a):
			t.Fatalf("%q let through: protected", raw)
		case restrict && !src.isLB() && !ctx.ExternalIPCIDRs[0].Contains(a):
			t.Fatalf("%q let through: outside the allowed CIDRs", raw)
		}
		if _, other := ctx.OtherNodeAddresses[a]; other {
			t.Fatalf("%q let through: another node's", raw)
		}
		if ctx.IsOwnAddress(a) {
			if _, ok := ctx.HostListeners.find(v1.Protocol(proto), a, port); ok {
				t.Fatalf("%q:%d/%s let through on a host listener", raw, port, proto)
			}
		}
	})
}

func (s AddressSource) isLB() bool { return s == SourceLoadBalancer }

func fuzzNodeContext(restrict bool) *NodeContext {
	ctx := ctx4()
	ctx.ClusterIPs = map[netip.Addr]int{fixture.Addr("10.96.0.1"): 1, fixture.Addr("10.100.0.9"): 2}
	ctx.ServiceCIDRs = []netip.Prefix{netip.MustParsePrefix("10.96.0.0/16")}
	ctx.OtherNodeAddresses = map[netip.Addr]string{fixture.Addr("192.168.0.11"): "node-b"}
	ctx.OwnNodeAddresses = map[netip.Addr]bool{fixture.Addr("203.0.113.50"): true}
	ctx.APIServerAddresses = map[netip.Addr]bool{fixture.Addr("192.168.0.10"): true, fixture.Addr("172.16.0.1"): true}
	ctx.APIServerEndpoints = map[netip.AddrPort]bool{netip.MustParseAddrPort("192.168.0.10:6443"): true, netip.MustParseAddrPort("172.16.0.1:443"): true}
	ctx.ProtectedCIDRs = []netip.Prefix{netip.MustParsePrefix("100.64.0.0/10")}
	ctx.RestrictExternalIPs = restrict
	ctx.ExternalIPCIDRs = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}
	ctx.HostListeners = NewHostListeners(nil)
	return ctx
}

// FuzzDesiredServicePort: a Service and an EndpointSlice with arbitrary values, through
// upstream's change trackers as the proxier receives them, give a state the kernel accepts:
// every ipset entry is one its set takes (one it refuses fails the whole restore batch), every
// port is in range, and every binding is in KUBE-IPVS-IPS and let through by the guard.
func FuzzDesiredServicePort(f *testing.F) {
	f.Add("10.96.0.10", "203.0.113.7", "198.51.100.9", int32(80), int32(30080), int32(31000), "TCP", uint8(2), uint8(1), "10.244.0.5", int32(8080), true, true, "true", int32(3))
	f.Add("10.96.0.11", "10.96.0.1", "10.96.0.10", int32(443), int32(0), int32(0), "UDP", uint8(3), uint8(0), "10.244.0.6", int32(70000), false, true, "", int32(0))
	f.Add("10.96.0.12", "192.168.0.10", "", int32(10250), int32(32000), int32(0), "SCTP", uint8(1), uint8(1), "10.244.1.5", int32(-1), true, false, "maybe", int32(70000))
	f.Add("fd00::1", "::1", "0.0.0.0", int32(65535), int32(65536), int32(-5), "ICMP", uint8(9), uint8(9), "not-an-ip", int32(0), false, false, "false", int32(0))
	sets := map[string]ipset.Set{}
	for _, s := range Sets(v1.IPv4Protocol) {
		sets[s.Name] = s
	}
	f.Fuzz(func(t *testing.T, clusterIP, extIP, lbIP string, port, nodePort, hcPort int32, proto string, typ, policy uint8,
		epIP string, epPort int32, epLocal, epReady bool, ann string, sticky int32) {
		svc := fuzzService(clusterIP, extIP, lbIP, port, nodePort, hcPort, proto, typ, policy, ann, sticky)
		es := fuzzSlice(svc, epIP, epPort, epLocal, epReady)
		ctx := fuzzNodeContext(false)
		ctx.LocalAddresses = map[netip.Addr]bool{fixture.NodeIP4: true}
		for _, in := range fuzzInputs(svc, es) {
			st, _ := ServicePort(ctx, in)
			for set, entries := range st.SetEntries {
				s, ok := sets[set]
				if !ok {
					t.Fatalf("entry for unknown set %s", set)
				}
				for _, e := range entries {
					if _, err := ipset.Canonical(s, e); err != nil {
						t.Fatalf("set %s would refuse %q: %v", set, e, err)
					}
				}
				if _, err := ipset.RenderRestore(restoreOps(set, entries)); err != nil {
					t.Fatalf("set %s: %v", set, err)
				}
			}
			for _, v := range st.VirtualServers {
				if v.VirtualServer.Key.Port == 0 || !InFamily(v1.IPv4Protocol, v.VirtualServer.Key.Address) {
					t.Fatalf("virtual server %v", v.VirtualServer.Key)
				}
				for _, r := range v.RealServers {
					if r.Port == 0 || !InFamily(v1.IPv4Protocol, r.Address) {
						t.Fatalf("real server %v", r)
					}
				}
			}
			ipvsIPs := map[string]bool{}
			for _, e := range st.SetEntries["KUBE-IPVS-IPS"] {
				ipvsIPs[e] = true
			}
			for _, a := range st.Bindings {
				if !ipvsIPs[a.String()] {
					t.Fatalf("binding %v without its KUBE-IPVS-IPS entry", a)
				}
				if ctx.IsOwnAddress(a) || a.IsLoopback() || a.IsUnspecified() {
					t.Fatalf("binding of %v", a)
				}
				if ctx.ClusterIPs[a] > 0 && a.String() != clusterIP {
					t.Fatalf("another Service's cluster IP %v is bound", a)
				}
			}
		}
	})
}

func restoreOps(set string, entries []string) []ipset.Op {
	ops := make([]ipset.Op, 0, len(entries))
	for _, e := range entries {
		ops = append(ops, ipset.Op{Kind: ipset.Add, Set: ipset.Set{Name: set}, Entry: e})
	}
	return ops
}

func fuzzService(clusterIP, extIP, lbIP string, port, nodePort, hcPort int32, proto string, typ, policy uint8, ann string, sticky int32) *v1.Service {
	types := []v1.ServiceType{v1.ServiceTypeClusterIP, v1.ServiceTypeNodePort, v1.ServiceTypeLoadBalancer, v1.ServiceTypeExternalName}
	svc := fixture.Service("fuzz", "10.96.0.10")
	svc.Spec.ClusterIP, svc.Spec.ClusterIPs = clusterIP, []string{clusterIP}
	svc.Spec.Type = types[int(typ)%len(types)]
	svc.Spec.Ports[0].Port = port
	svc.Spec.Ports[0].NodePort = nodePort
	svc.Spec.Ports[0].Protocol = v1.Protocol(proto)
	svc.Spec.HealthCheckNodePort = hcPort
	if extIP != "" {
		svc.Spec.ExternalIPs = []string{extIP}
	}
	if lbIP != "" {
		svc.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: lbIP}}
	}
	if policy&1 != 0 {
		svc.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
	}
	if policy&2 != 0 {
		svc.Spec.InternalTrafficPolicy = ptr.To(v1.ServiceInternalTrafficPolicyLocal)
	}
	if policy&4 != 0 {
		svc.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		svc.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr.To(sticky)}}
	}
	if policy&8 != 0 {
		svc.Spec.LoadBalancerSourceRanges = []string{"10.0.0.0/8", ann}
	}
	svc.Annotations = map[string]string{AnnotationBindLBIngress: ann}
	return svc
}

func fuzzSlice(svc *v1.Service, ip string, port int32, local, ready bool) *discovery.EndpointSlice {
	node := "node-b"
	if local {
		node = fixture.Node
	}
	return &discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "fuzz-1", Namespace: svc.Namespace, Labels: map[string]string{discovery.LabelServiceName: svc.Name}},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: ptr.To("p"), Port: ptr.To(port), Protocol: ptr.To(svc.Spec.Ports[0].Protocol)}},
		Endpoints: []discovery.Endpoint{{
			Addresses:  []string{ip},
			Conditions: discovery.EndpointConditions{Ready: ptr.To(ready), Serving: ptr.To(ready)},
			NodeName:   ptr.To(node),
		}},
	}
}

// fuzzInputs runs the objects through upstream's change trackers (which drop what they cannot
// use, e.g. an unparseable cluster IP) as the proxier's informers would.
func fuzzInputs(svc *v1.Service, es *discovery.EndpointSlice) []ServicePortInput {
	sct := proxy.NewServiceChangeTracker(v1.IPv4Protocol, NewServicePortInfo, nil)
	ect := proxy.NewEndpointsChangeTracker(v1.IPv4Protocol, fixture.Node, nil, nil)
	sct.Update(nil, svc)
	ect.EndpointSliceUpdate(es, false)
	svcs, eps := proxy.ServicePortMap{}, proxy.EndpointsMap{}
	svcs.Update(sct)
	eps.Update(ect)
	var out []ServicePortInput
	for name, sp := range svcs {
		out = append(out, ServicePortInput{Name: name, Port: sp, Endpoints: eps[name]})
	}
	return out
}

var _ = intstr.FromInt32
