package e2e

// The differential test's generator (docs/parity.md): from a seed, a cluster state (Services of
// every type and policy, EndpointSlices with every condition, topology hints, zones of the three
// Nodes) and a sequence of changes to it. Pure: no API calls here (parity_test.go applies them).
//
// What it avoids, because kube-proxy-ipvs differs from upstream there by design
// (docs/address-guard.md, docs/security.md): externalIPs and LoadBalancer ingress IPs equal to a
// node's, the apiserver's or a cluster IP, or inside the service CIDR (they come from
// 192.168.200.0/24 and 192.168.100.0/24, one Service each, so no two Services claim one virtual
// server), the bind-lb-ingress annotation with the value "false", and "true" on a Service whose
// ingress has ipMode Proxy (docs/lb-ingress-binding.md; "true" on VIP-mode ingress and an
// invalid value, which mean upstream's behaviour, are generated).

import (
	"fmt"
	"math/rand/v2"
	"sort"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const (
	parityLabelZone     = "topology.kubernetes.io/zone"
	parityTopologyMode  = "service.kubernetes.io/topology-mode"
	parityBindLBIngress = "kube-proxy-ipvs.io/bind-lb-ingress"
)

// parityWorld is the desired API state: Services (cluster IPs and node ports left to the
// apiserver), their EndpointSlices, and the zone of each Node.
type parityWorld struct {
	NS       string
	Services map[string]*corev1.Service                      // by name
	Slices   map[string][]*discoveryv1.EndpointSlice         // by Service name
	LBIPs    map[string][]string                             // status.loadBalancer.ingress of LoadBalancer Services
	LBModes  map[string]map[string]corev1.LoadBalancerIPMode // ingress IP -> ipMode
	Zones    map[string]string                               // node name -> zone
	next     int                                             // name counter
	usedEIP  map[string]bool
	usedLBIP map[string]bool
}

// parityGen draws a world and its changes from one seed.
type parityGen struct {
	r     parityRand
	r6    parityRand // the IP families and everything IPv6: a stream of its own, see setFamilies
	w     *parityWorld
	nodes []string
}

// parityRand is a generator's source of draws.
type parityRand struct{ *rand.Rand }

func newParityGen(seed uint64, ns string) *parityGen {
	g := &parityGen{r: parityRand{rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))}, r6: parityRand{rand.New(rand.NewPCG(seed, 0x6a09e667f3bcc909))}, nodes: []string{"node1", "node2", "node3"}}
	g.w = &parityWorld{NS: ns, Services: map[string]*corev1.Service{}, Slices: map[string][]*discoveryv1.EndpointSlice{},
		LBIPs: map[string][]string{}, LBModes: map[string]map[string]corev1.LoadBalancerIPMode{},
		Zones:   map[string]string{"node1": "zone-a", "node2": "zone-b", "node3": "zone-c"},
		usedEIP: map[string]bool{}, usedLBIP: map[string]bool{}}
	return g
}

// Initial populates 30-60 Services (first call only) and returns the world.
func (g *parityGen) Initial() *parityWorld {
	n := 30 + g.r.IntN(31)
	kinds := []string{"ClusterIP", "NodePort", "LoadBalancer", "ExternalName", "Headless"}
	for i := 0; i < n; i++ {
		kind := kinds[i%len(kinds)] // every type present, the rest random
		if i >= len(kinds) {
			kind = g.r.pick(kinds, []int{30, 25, 25, 8, 12})
		}
		g.addService(kind)
	}
	return g.w
}

func (r parityRand) pick(xs []string, weights []int) string {
	total := 0
	for _, w := range weights {
		total += w
	}
	v := r.IntN(total)
	for i, w := range weights {
		if v < w {
			return xs[i]
		}
		v -= w
	}
	return xs[len(xs)-1]
}

func (r parityRand) chance(pct int) bool { return r.IntN(100) < pct }

func (g *parityGen) freeIP(r parityRand, prefix string, used map[string]bool) string {
	for {
		ip := fmt.Sprintf("%s%d", prefix, 1+r.IntN(250))
		if !used[ip] {
			used[ip] = true
			return ip
		}
	}
}

func (g *parityGen) addService(kind string) string {
	g.w.next++
	name := fmt.Sprintf("s%03d-%s", g.w.next, map[string]string{"ClusterIP": "cip", "NodePort": "np", "LoadBalancer": "lb",
		"ExternalName": "ext", "Headless": "hl"}[kind])
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: g.w.NS}}
	np := 1 + g.r.IntN(3)
	used := map[string]bool{}
	for i := 0; i < np; i++ {
		proto := corev1.Protocol(g.r.pick([]string{"TCP", "UDP", "SCTP"}, []int{60, 30, 10}))
		var port int32
		for {
			port = []int32{80, 443, 53, 8080, 9000, 5432, 6379, 3000}[g.r.IntN(8)] + int32(g.r.IntN(3))*1000
			if k := fmt.Sprint(proto, port); !used[k] {
				used[k] = true
				break
			}
		}
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: fmt.Sprintf("p%d", i), Protocol: proto, Port: port,
			TargetPort: intstr.FromInt32(8000 + int32(g.r.IntN(100)))})
	}
	g.w.Services[name] = svc
	if kind != "ExternalName" {
		g.setFamilies(svc)
	}
	g.setType(svc, kind)
	if kind != "ExternalName" {
		g.churnEndpoints(name)
	}
	return name
}

// setFamilies draws the Service's IP families: IPv4 only (the apiserver's default), IPv6 only,
// or dual-stack with either family first. Its draws, and every IPv6 one after it, come from r6,
// so that the IPv4 part of a seed's world is the one the generator drew before it had IPv6 (a
// seed recorded then replays the same IPv4 state).
func (g *parityGen) setFamilies(svc *corev1.Service) {
	single, prefer, require := corev1.IPFamilyPolicySingleStack, corev1.IPFamilyPolicyPreferDualStack, corev1.IPFamilyPolicyRequireDualStack
	switch g.r6.pick([]string{"v4", "v6", "dual", "dual6"}, []int{55, 15, 20, 10}) {
	case "v6":
		svc.Spec.IPFamilyPolicy, svc.Spec.IPFamilies = &single, []corev1.IPFamily{corev1.IPv6Protocol}
	case "dual":
		svc.Spec.IPFamilyPolicy, svc.Spec.IPFamilies = &prefer, []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	case "dual6":
		svc.Spec.IPFamilyPolicy, svc.Spec.IPFamilies = &require, []corev1.IPFamily{corev1.IPv6Protocol, corev1.IPv4Protocol}
	}
}

// hasIPv6 reports whether svc gets an IPv6 cluster IP.
func hasIPv6(svc *corev1.Service) bool {
	for _, f := range svc.Spec.IPFamilies {
		if f == corev1.IPv6Protocol {
			return true
		}
	}
	return false
}

// setType (re)writes the type-dependent fields of svc for kind; the rest of the spec stays.
func (g *parityGen) setType(svc *corev1.Service, kind string) {
	s := &svc.Spec
	s.ExternalName, s.ClusterIP, s.ExternalTrafficPolicy, s.LoadBalancerSourceRanges = "", "", "", nil
	s.ExternalIPs, s.SessionAffinity, s.SessionAffinityConfig, s.InternalTrafficPolicy = nil, "", nil, nil
	s.TrafficDistribution, s.HealthCheckNodePort = nil, 0
	delete(svc.Annotations, parityTopologyMode)
	delete(svc.Annotations, parityBindLBIngress)
	delete(g.w.LBIPs, svc.Name)
	delete(g.w.LBModes, svc.Name)
	for i := range s.Ports {
		s.Ports[i].NodePort = 0
	}
	switch kind {
	case "ExternalName":
		s.Type, s.ExternalName = corev1.ServiceTypeExternalName, "example.com"
		return
	case "Headless":
		s.Type, s.ClusterIP = corev1.ServiceTypeClusterIP, corev1.ClusterIPNone
		return
	case "ClusterIP":
		s.Type = corev1.ServiceTypeClusterIP
	case "NodePort":
		s.Type = corev1.ServiceTypeNodePort
	case "LoadBalancer":
		s.Type = corev1.ServiceTypeLoadBalancer
	}
	if s.Type != corev1.ServiceTypeClusterIP {
		s.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicy(g.r.pick([]string{"Cluster", "Local"}, []int{50, 50}))
	}
	g.setITP(svc)
	if g.r.chance(30) {
		s.SessionAffinity = corev1.ServiceAffinityClientIP
		if g.r.chance(50) {
			to := int32(60 + g.r.IntN(3600))
			s.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: &to}}
		}
	}
	if g.r.chance(25) {
		g.setExternalIPs(svc)
	}
	g.setTopology(svc)
	if s.Type == corev1.ServiceTypeLoadBalancer {
		if g.r.chance(50) {
			for _, c := range []string{"172.30.0.0/24", "10.1.0.0/16", "203.0.113.0/24", "198.51.100.7/32"} {
				if g.r.chance(45) {
					s.LoadBalancerSourceRanges = append(s.LoadBalancerSourceRanges, c)
				}
			}
			if hasIPv6(svc) {
				for _, c := range []string{"fd00:172:30::/64", "2001:db8:1::/48"} {
					if g.r6.chance(40) {
						s.LoadBalancerSourceRanges = append(s.LoadBalancerSourceRanges, c)
					}
				}
			}
		}
		if g.r.chance(20) {
			g.annotate(svc, parityBindLBIngress, g.r.pick([]string{"true", "maybe"}, []int{70, 30}))
		}
		g.setLBIngress(svc.Name)
	}
}

func (g *parityGen) annotate(svc *corev1.Service, k, v string) {
	if svc.Annotations == nil {
		svc.Annotations = map[string]string{}
	}
	svc.Annotations[k] = v
}

func (g *parityGen) setITP(svc *corev1.Service) {
	p := corev1.ServiceInternalTrafficPolicy(g.r.pick([]string{"Cluster", "Local"}, []int{70, 30}))
	svc.Spec.InternalTrafficPolicy = &p
}

func (g *parityGen) setExternalIPs(svc *corev1.Service) {
	for _, ip := range svc.Spec.ExternalIPs {
		delete(g.w.usedEIP, ip)
	}
	svc.Spec.ExternalIPs = nil
	for i := g.r.IntN(3); i >= 0; i-- {
		svc.Spec.ExternalIPs = append(svc.Spec.ExternalIPs, g.freeIP(g.r, "192.168.200.", g.w.usedEIP))
	}
	if hasIPv6(svc) {
		for i := g.r6.IntN(3); i > 0; i-- {
			svc.Spec.ExternalIPs = append(svc.Spec.ExternalIPs, g.freeIP(g.r6, "2001:db8:200::", g.w.usedEIP))
		}
	}
}

func (g *parityGen) setLBIngress(name string) {
	for _, ip := range g.w.LBIPs[name] {
		delete(g.w.usedLBIP, ip)
	}
	g.w.LBIPs[name], g.w.LBModes[name] = nil, map[string]corev1.LoadBalancerIPMode{}
	for i := g.r.IntN(3); i > 0; i-- { // 0-2 ingress IPs: none yet is a state too
		g.addLBIngress(g.r, name, g.freeIP(g.r, "192.168.100.", g.w.usedLBIP))
	}
	if hasIPv6(g.w.Services[name]) {
		for i := g.r6.IntN(3); i > 0; i-- {
			g.addLBIngress(g.r6, name, g.freeIP(g.r6, "2001:db8:100::", g.w.usedLBIP))
		}
	}
}

func (g *parityGen) addLBIngress(r parityRand, name, ip string) {
	g.w.LBIPs[name] = append(g.w.LBIPs[name], ip)
	mode := corev1.LoadBalancerIPModeVIP
	// The annotation "true" binds an ipMode Proxy entry too, where upstream leaves it alone
	// (docs/lb-ingress-binding.md): that pair is not generated. The draw is made either way so
	// that every other seed's world stays as it was.
	if r.chance(15) && g.w.Services[name].Annotations[parityBindLBIngress] != "true" {
		mode = corev1.LoadBalancerIPModeProxy
	}
	g.w.LBModes[name][ip] = mode
}

// setTopology: nothing, the topology-mode annotation (Auto), or a trafficDistribution.
func (g *parityGen) setTopology(svc *corev1.Service) {
	delete(svc.Annotations, parityTopologyMode)
	svc.Spec.TrafficDistribution = nil
	switch g.r.pick([]string{"none", "auto", "PreferClose", "PreferSameZone", "PreferSameNode"}, []int{40, 15, 15, 15, 15}) {
	case "auto":
		g.annotate(svc, parityTopologyMode, "Auto")
	case "none":
	default:
		td := g.r.pick([]string{"PreferClose", "PreferSameZone", "PreferSameNode"}, []int{1, 1, 1})
		svc.Spec.TrafficDistribution = &td
	}
}

// churnEndpoints regenerates the EndpointSlices of Service name: 0-2 slices, 0-6 endpoints each,
// on this node (node1), other nodes or none, every combination of conditions, hints or not.
func (g *parityGen) churnEndpoints(name string) {
	g.w.Slices[name] = g.drawSlices(g.r, name, discoveryv1.AddressTypeIPv4)
	if hasIPv6(g.w.Services[name]) {
		g.w.Slices[name] = append(g.w.Slices[name], g.drawSlices(g.r6, name, discoveryv1.AddressTypeIPv6)...)
	}
}

// drawSlices draws the EndpointSlices of one address type. Endpoint addresses are those of the
// node's pod range: 10.244.N.x, fd00:10:244:N::x. An IPv6-only Service keeps its IPv4 slices
// (kube-proxy ignores the family it does not serve, and so must both).
func (g *parityGen) drawSlices(r parityRand, name string, at discoveryv1.AddressType) []*discoveryv1.EndpointSlice {
	svc := g.w.Services[name]
	prefix := name
	if at == discoveryv1.AddressTypeIPv6 {
		prefix = name + "-v6"
	}
	var slices []*discoveryv1.EndpointSlice
	// One address in two slices is a state the EndpointSlice controller passes through (an
	// endpoint moving between slices, a pod IP reused). kube-proxy then keeps a non-terminating
	// entry over a terminating one, whatever the order; between two of the same kind, the one it
	// happens to read first, which differs between two kube-proxies, so such a pair is not kept.
	terminatingIn := map[string]bool{} // address -> terminating, over the Service's earlier slices
	for si := r.IntN(3); si > 0; si-- {
		sl := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", prefix, len(slices)), Namespace: g.w.NS, Labels: map[string]string{
				discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: "parity.kube-proxy-ipvs"}},
			AddressType: at,
		}
		for _, sp := range svc.Spec.Ports {
			if r.chance(8) { // a port the Service does not have
				continue
			}
			n, proto, port := sp.Name, sp.Protocol, sp.TargetPort.IntVal
			sl.Ports = append(sl.Ports, discoveryv1.EndpointPort{Name: &n, Protocol: &proto, Port: &port})
		}
		hints := r.pick([]string{"all", "none", "some"}, []int{50, 35, 15})
		seen := map[string]bool{}
		for e := r.IntN(7); e > 0; e-- {
			node := r.pick([]string{"node1", "node2", "node3", ""}, []int{35, 30, 30, 5})
			oct := 1 + r.IntN(3)
			if node != "" {
				oct = int(node[4] - '0')
			}
			ip := fmt.Sprintf("10.244.%d.%d", oct, 20+r.IntN(200))
			if at == discoveryv1.AddressTypeIPv6 {
				ip = fmt.Sprintf("fd00:10:244:%d::%x", oct, 20+r.IntN(200))
			}
			if seen[ip] {
				continue
			}
			seen[ip] = true
			earlier, dup := terminatingIn[ip]
			ep := discoveryv1.Endpoint{Addresses: []string{ip}}
			if node != "" {
				ep.NodeName = &node
				ep.Zone = ptrTo(g.w.Zones[node])
			}
			ep.Conditions = r.conditions()
			if hints == "all" || (hints == "some" && r.chance(50)) {
				z := r.pick([]string{"zone-a", "zone-b", "zone-c"}, []int{1, 1, 1})
				ep.Hints = &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: z}}}
				if r.chance(50) {
					ep.Hints.ForNodes = []discoveryv1.ForNode{{Name: r.pick(g.nodes, []int{1, 1, 1})}}
				}
			}
			terminating := ep.Conditions.Terminating != nil && *ep.Conditions.Terminating
			if dup && earlier == terminating {
				continue
			}
			if !dup {
				terminatingIn[ip] = terminating
			}
			sl.Endpoints = append(sl.Endpoints, ep)
		}
		slices = append(slices, sl)
	}
	return slices
}

func ptrTo[T any](v T) *T { return &v }

func (r parityRand) conditions() discoveryv1.EndpointConditions {
	b := func() *bool {
		switch r.IntN(5) {
		case 0:
			return nil
		case 1, 2:
			return ptrTo(false)
		}
		return ptrTo(true)
	}
	switch r.IntN(4) {
	case 0, 1: // the common case
		return discoveryv1.EndpointConditions{Ready: ptrTo(true), Serving: ptrTo(true), Terminating: ptrTo(false)}
	case 2: // terminating, still serving or not
		return discoveryv1.EndpointConditions{Ready: ptrTo(false), Serving: b(), Terminating: ptrTo(true)}
	}
	return discoveryv1.EndpointConditions{Ready: b(), Serving: b(), Terminating: b()}
}

// parityChange is one step of a change phase, for the log.
type parityChange struct{ What, Service string }

// Change applies a phase of 6-14 random changes to the world (and, when zone is true, moves
// node1 to another zone) and returns what it did.
func (g *parityGen) Change(zone bool) []parityChange {
	var out []parityChange
	names := func() []string {
		ns := make([]string, 0, len(g.w.Services))
		for n := range g.w.Services {
			if n != parityKeepService {
				ns = append(ns, n)
			}
		}
		sort.Strings(ns)
		return ns
	}
	kindOf := func(s *corev1.Service) string {
		switch {
		case s.Spec.Type == corev1.ServiceTypeExternalName:
			return "ExternalName"
		case s.Spec.ClusterIP == corev1.ClusterIPNone:
			return "Headless"
		}
		return string(s.Spec.Type)
	}
	for k := 6 + g.r.IntN(9); k > 0; k-- {
		ns := names()
		if len(ns) == 0 {
			break
		}
		name := ns[g.r.IntN(len(ns))]
		svc := g.w.Services[name]
		kind := kindOf(svc)
		what := g.r.pick([]string{"delete", "add", "endpoints", "type", "etp", "itp", "externalIPs", "lbIngress", "affinity", "topology"},
			[]int{10, 10, 30, 10, 8, 6, 8, 8, 5, 5})
		switch {
		case what == "delete":
			for _, ip := range svc.Spec.ExternalIPs {
				delete(g.w.usedEIP, ip)
			}
			delete(g.w.Services, name)
			delete(g.w.Slices, name)
			delete(g.w.LBIPs, name)
			delete(g.w.LBModes, name)
		case what == "add":
			name = g.addService(g.r.pick([]string{"ClusterIP", "NodePort", "LoadBalancer", "ExternalName", "Headless"}, []int{30, 25, 25, 8, 12}))
		case kind == "ExternalName" || kind == "Headless":
			if what != "endpoints" || kind == "ExternalName" {
				what = "none"
				continue
			}
			g.churnEndpoints(name)
		case what == "endpoints":
			g.churnEndpoints(name)
		case what == "type": // among ClusterIP, NodePort, LoadBalancer (the apiserver keeps the cluster IP)
			others := map[string][]string{"ClusterIP": {"NodePort", "LoadBalancer"}, "NodePort": {"ClusterIP", "LoadBalancer"},
				"LoadBalancer": {"ClusterIP", "NodePort"}}[kind]
			to := others[g.r.IntN(2)]
			for _, ip := range svc.Spec.ExternalIPs {
				delete(g.w.usedEIP, ip)
			}
			g.setType(svc, to)
			what = "type " + kind + "->" + to
		case what == "etp":
			if svc.Spec.ExternalTrafficPolicy == "" {
				continue
			}
			if svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
				svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
			} else {
				svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			}
		case what == "itp":
			g.setITP(svc)
		case what == "externalIPs":
			if len(svc.Spec.ExternalIPs) > 0 && g.r.chance(30) {
				for _, ip := range svc.Spec.ExternalIPs {
					delete(g.w.usedEIP, ip)
				}
				svc.Spec.ExternalIPs = nil
			} else {
				g.setExternalIPs(svc)
			}
		case what == "lbIngress":
			if kind != "LoadBalancer" {
				continue
			}
			g.setLBIngress(name)
		case what == "affinity":
			if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
				svc.Spec.SessionAffinity, svc.Spec.SessionAffinityConfig = "", nil
			} else {
				svc.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			}
		case what == "topology":
			g.setTopology(svc)
		}
		out = append(out, parityChange{what, name})
	}
	if zone {
		z := g.w.Zones["node1"]
		for z == g.w.Zones["node1"] {
			z = g.r.pick([]string{"zone-a", "zone-b", "zone-c"}, []int{1, 1, 1})
		}
		g.w.Zones["node1"] = z
		out = append(out, parityChange{"zone node1->" + z, ""})
	}
	return out
}

// parityKeepService is the Service the long-lived connection goes through: never changed.
const parityKeepService = "keep"

// addKeep adds the Service of the long-lived connection: ClusterIP, TCP 80 -> the echoserver
// pod on node1 (10.244.1.10:8080, the first pod of the parity node).
func (g *parityGen) addKeep() {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: parityKeepService, Namespace: g.w.NS},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: []corev1.ServicePort{
			{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
	g.w.Services[svc.Name] = svc
	n, proto, port, node := "tcp", corev1.ProtocolTCP, int32(8080), "node1"
	g.w.Slices[svc.Name] = []*discoveryv1.EndpointSlice{{
		ObjectMeta: metav1.ObjectMeta{Name: "keep-0", Namespace: g.w.NS, Labels: map[string]string{
			discoveryv1.LabelServiceName: svc.Name, discoveryv1.LabelManagedBy: "parity.kube-proxy-ipvs"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &n, Protocol: &proto, Port: &port}},
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.244.1.10"}, NodeName: &node,
			Conditions: discoveryv1.EndpointConditions{Ready: ptrTo(true), Serving: ptrTo(true), Terminating: ptrTo(false)}}},
	}}
}
