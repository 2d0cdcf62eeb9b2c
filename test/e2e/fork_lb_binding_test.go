package e2e

// Issue 5 (docs/lb-ingress-binding.md): binding LoadBalancer ingress IPs to kube-ipvs0, globally
// (--ipvs-bind-lb-ingress) and per Service (annotation kube-proxy-ipvs.io/bind-lb-ingress).
//
// The lab's load balancer is a namespace on the node network that owns the VIP(s) and, like
// Tencent CLB, probes each node's healthCheckNodePort with the VIP as the source address (no
// SNAT). Where a node has the VIP bound to kube-ipvs0, the probe's source is a local address of
// the node: the kernel drops it as a martian and the probe times out.

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/framework"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// VIPs on the node network, owned by the LB namespace. Each scenario uses its own: ours keeps a
// deleted Service's TCP virtual server until its connections have drained (graceful termination),
// which would hold a shared VIP's virtual server over into the next scenario.
const (
	vipAnnFalse      = "172.30.0.50"
	vipGlobalOff     = "172.30.0.51"
	vipGlobalOffTrue = "172.30.0.52"
	vipBound         = "172.30.0.53"
	vipIPModeProxy   = "172.30.0.54"
	annBindLBIngress = "kube-proxy-ipvs.io/bind-lb-ingress"
)

var lbVIPs = []string{vipAnnFalse, vipGlobalOff, vipGlobalOffTrue, vipBound, vipIPModeProxy}

func init() {
	register("ForkLBBindingAnnotationFalse", testForkLBBindingAnnotationFalse)
	register("ForkLBBindingGlobalOff", testForkLBBindingGlobalOff)
	register("ForkLBBindingBoundShortCircuit", testForkLBBindingBoundShortCircuit)
	register("ForkLBBindingIPModeProxy", testForkLBBindingIPModeProxy)
}

// lbLab: the LB namespace, an endpoint on node2 and a client pod on node2 (the eTP=Local LB
// virtual server of a node only holds that node's endpoints, so the pod that reaches the VIP
// lives where the endpoint is).
type lbLab struct {
	c       *framework.Cluster
	ns      string
	lb      *framework.NS
	backend *framework.Pod
	client  *framework.Pod
}

func newLBLab(t *testing.T, c *framework.Cluster) *lbLab {
	t.Helper()
	l := &lbLab{c: c, ns: c.Namespace(t)}
	l.lb = c.AddHost(t, "lb", lbVIPs...)
	// Count, from the LB side, every TCP packet to the VIPs' port 80 (the LB serves nothing there).
	for _, vip := range lbVIPs {
		if _, err := l.lb.Run(context.Background(), "iptables", "-w", "-A", "INPUT", "-d", vip, "-p", "tcp", "--dport", "80"); err != nil {
			t.Fatal(err)
		}
	}
	l.backend = c.AddPod(t, 2, "lbb-echo", 8080)
	l.client = c.AddPod(t, 2, "lbb-client", 9999)
	return l
}

// service creates an eTP=Local LoadBalancer Service, endpoint on node2, whose status ingress is
// vip (ipMode as given), with the annotations.
func (l *lbLab) service(t *testing.T, name, vip string, ipMode corev1.LoadBalancerIPMode, ann map[string]string) *corev1.Service {
	t.Helper()
	svc := l.c.CreateService(t, l.ns, name, []framework.ServicePort{
		{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 80, Target: 8080},
	}, []*framework.Pod{l.backend}, func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeLoadBalancer
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		s.Annotations = ann
	})
	ctx := context.Background()
	cur, err := l.c.Client.CoreV1().Services(l.ns).Get(ctx, svc.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := ipMode
	cur.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: vip, IPMode: &m}}
	svc, err = l.c.Client.CoreV1().Services(l.ns).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("service %s status: %v", name, err)
	}
	if svc.Spec.HealthCheckNodePort == 0 {
		t.Fatalf("service %s: no healthCheckNodePort allocated", name)
	}
	t.Logf("service %s/%s: LB ingress %s (ipMode %s, annotations %v), nodePort %d, healthCheckNodePort %d",
		l.ns, name, vip, ipMode, ann, svc.Spec.Ports[0].NodePort, svc.Spec.HealthCheckNodePort)
	return svc
}

// wantHC is the health check answer of node i: 200 where the endpoint is (node2), 503 elsewhere.
func wantHC(i int) int {
	if i == 2 {
		return 200
	}
	return 503
}

// waitProgrammed waits until every node serves svc's health check (probed from the client, whose
// source is an ordinary address: the positive control) and its NodePort virtual server, then
// checks that the VIP is bound (address on kube-ipvs0 + IPVS virtual server) on every node, or
// on none.
func (l *lbLab) waitProgrammed(t *testing.T, svc *corev1.Service, vip string, bound bool) {
	t.Helper()
	c := l.c
	np := uint16(svc.Spec.Ports[0].NodePort)
	c.Eventually(t, fmt.Sprintf("health check of %s served on every node (from the client)", svc.Name), func() error {
		for i := 1; i <= len(c.Net.Nodes); i++ {
			n := c.Node(i)
			code, body, err := c.Net.Client.HTTPGet(fmt.Sprintf("http://%s:%d/", n.IP, svc.Spec.HealthCheckNodePort), 2*time.Second)
			if err != nil {
				return fmt.Errorf("%s: %v", n.Name, err)
			}
			if code != wantHC(i) {
				return fmt.Errorf("%s: HTTP %d (%s), want %d", n.Name, code, strings.TrimSpace(body), wantHC(i))
			}
			if _, err := c.IPVSRealServers(n, n.IP.String(), np, "tcp"); err != nil {
				return err
			}
		}
		return nil
	})
	c.Eventually(t, fmt.Sprintf("LB ingress %s bound=%v on every node (kube-ipvs0 and IPVS)", vip, bound), func() error {
		for _, n := range c.Net.Nodes {
			has, err := n.HasKubeIPVS0Addr(vip)
			if err != nil {
				return err
			}
			_, vsErr := c.IPVSRealServers(n, vip, 80, "tcp")
			if has != bound || (vsErr == nil) != bound {
				return fmt.Errorf("%s: %s on kube-ipvs0=%v, IPVS virtual server=%v, want %v", n.Name, vip, has, vsErr == nil, bound)
			}
		}
		return nil
	})
}

// probe GETs node's healthCheckNodePort from the LB namespace with source address vip.
func (l *lbLab) probe(svc *corev1.Service, vip string, n *framework.Node) (int, error) {
	r, err := l.lb.HTTPGetFrom(fmt.Sprintf("http://%s:%d/", n.IP, svc.Spec.HealthCheckNodePort), net.ParseIP(vip), 2*time.Second)
	return r.Status, err
}

// probeAll probes every node at once; results indexed by node-1.
func (l *lbLab) probeAll(svc *corev1.Service, vip string) ([]int, []error) {
	nodes := l.c.Net.Nodes
	codes, errs := make([]int, len(nodes)), make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); codes[i], errs[i] = l.probe(svc, vip, n) }()
	}
	wg.Wait()
	return codes, errs
}

// expectProbesFail: every health check probe with source = vip gets no answer (upstream).
func (l *lbLab) expectProbesFail(t *testing.T, svc *corev1.Service, vip string) {
	t.Helper()
	codes, errs := l.probeAll(svc, vip)
	for i, err := range errs {
		if err == nil {
			l.c.DumpState(t)
			t.Fatalf("health check probe of node%d from the LB (source %s) answered HTTP %d, want no answer (martian source: %s is bound locally)",
				i+1, vip, codes[i], vip)
		}
		t.Logf("health check probe of node%d from %s: %v (as expected)", i+1, vip, err)
	}
}

// expectProbesAnswer: the probes with source = vip get 200 on node2 (local endpoint), 503 on the
// others.
func (l *lbLab) expectProbesAnswer(t *testing.T, svc *corev1.Service, vip string) {
	t.Helper()
	l.c.Eventually(t, fmt.Sprintf("health check probes from the LB with source %s answer 200 on node2, 503 elsewhere", vip), func() error {
		codes, errs := l.probeAll(svc, vip)
		for i := range codes {
			if errs[i] != nil {
				return fmt.Errorf("node%d: %v", i+1, errs[i])
			}
			if codes[i] != wantHC(i+1) {
				return fmt.Errorf("node%d: HTTP %d, want %d", i+1, codes[i], wantHC(i+1))
			}
		}
		return nil
	})
}

// lbCounter reads the LB namespace's packet counter for vip:80.
func (l *lbLab) lbCounter(t *testing.T, vip string) int {
	t.Helper()
	out, err := l.lb.Run(context.Background(), "iptables", "-w", "-L", "INPUT", "-v", "-x", "-n")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		// pkts bytes target prot opt in out source destination [extra]; no target: one field less
		if len(f) >= 8 && strings.Contains(line, vip) && strings.Contains(line, "dpt:80") {
			n, err := strconv.Atoi(f[0])
			if err != nil {
				t.Fatalf("LB counter line %q: %v", line, err)
			}
			return n
		}
	}
	t.Fatalf("no LB counter for %s in:\n%s", vip, out)
	return 0
}

// expectShortCircuit: a pod reaching vip:80 is answered by the endpoint, and none of its packets
// reach the LB namespace (the node's IPVS answered).
func (l *lbLab) expectShortCircuit(t *testing.T, vip string) {
	t.Helper()
	before := l.lbCounter(t, vip)
	r := l.c.EventuallyEcho(t, l.client.NS, "tcp", net.JoinHostPort(vip, "80"), nil)
	if r.Pod != l.backend.Name {
		t.Fatalf("%s:80 from pod %s answered by %s, want %s", vip, l.client.Name, r.Pod, l.backend.Name)
	}
	if after := l.lbCounter(t, vip); after != before {
		t.Fatalf("pod -> %s:80: %d packets reached the LB namespace, want 0 (bound: IPVS on node2 must answer)", vip, after-before)
	}
	t.Logf("pod -> %s:80 answered by %s; LB namespace saw 0 packets", vip, r.Pod)
}

// expectReachesLB: a pod's packets to vip:80 go out to the LB namespace (not bound); the LB
// serves nothing there, so no echo answer is expected.
func (l *lbLab) expectReachesLB(t *testing.T, vip string) {
	t.Helper()
	before := l.lbCounter(t, vip)
	r, err := framework.Echo(l.client.NS, "tcp", net.JoinHostPort(vip, "80"), 2*time.Second)
	if err == nil {
		t.Fatalf("pod -> %s:80 answered by %s on the node, want its packets sent to the LB (not bound)", vip, r.Pod)
	}
	after := l.lbCounter(t, vip)
	if after <= before {
		t.Fatalf("pod -> %s:80 (%v): the LB namespace saw no packet, want the traffic to leave the node", vip, err)
	}
	t.Logf("pod -> %s:80: %d packets reached the LB namespace (%v)", vip, after-before, err)
}

// ForkLBBindingAnnotationFalse: the Service says kube-proxy-ipvs.io/bind-lb-ingress: "false".
// Upstream ignores the annotation: it binds the VIP on every node and every health check probe
// from the VIP is dropped. Ours leaves it unbound: probes answer 200 (node2) / 503, and a pod's
// traffic to the VIP goes out to the load balancer.
func testForkLBBindingAnnotationFalse(t *testing.T, c *framework.Cluster) {
	l := newLBLab(t, c)
	svc := l.service(t, "ann-false", vipAnnFalse, corev1.LoadBalancerIPModeVIP, map[string]string{annBindLBIngress: "false"})
	if c.Impl.Name == "upstream" {
		l.waitProgrammed(t, svc, vipAnnFalse, true)
		l.expectProbesFail(t, svc, vipAnnFalse)
		l.expectShortCircuit(t, vipAnnFalse)
		return
	}
	l.waitProgrammed(t, svc, vipAnnFalse, false)
	l.expectProbesAnswer(t, svc, vipAnnFalse)
	l.expectReachesLB(t, vipAnnFalse)
}

// ForkLBBindingGlobalOff: ours runs with --ipvs-bind-lb-ingress=false (upstream has no such
// setting and runs as it is). A Service without annotation: upstream's probes from the VIP all
// fail, ours answer 200/503. A second Service annotated "true" stays bound in both: a pod reaching
// its VIP is answered by the endpoint without a packet reaching the LB.
func testForkLBBindingGlobalOff(t *testing.T, c *framework.Cluster) {
	ours := c.Impl.Name != "upstream"
	if ours {
		c.WithProxies(t, c.Net.Nodes, nil, "--ipvs-bind-lb-ingress=false")
	}
	l := newLBLab(t, c)
	plain := l.service(t, "plain", vipGlobalOff, corev1.LoadBalancerIPModeVIP, nil)
	pinned := l.service(t, "ann-true", vipGlobalOffTrue, corev1.LoadBalancerIPModeVIP, map[string]string{annBindLBIngress: "true"})
	l.waitProgrammed(t, pinned, vipGlobalOffTrue, true)
	l.expectShortCircuit(t, vipGlobalOffTrue)
	if !ours {
		l.waitProgrammed(t, plain, vipGlobalOff, true)
		l.expectProbesFail(t, plain, vipGlobalOff)
		return
	}
	l.waitProgrammed(t, plain, vipGlobalOff, false)
	l.expectProbesAnswer(t, plain, vipGlobalOff)
	l.expectReachesLB(t, vipGlobalOff)
}

// ForkLBBindingBoundShortCircuit: default settings, no annotation: both bind the VIP, a pod
// reaching it is answered by the endpoint with no packet reaching the LB namespace, and (the
// trade-off) the LB's probes from its VIP fail on every node.
func testForkLBBindingBoundShortCircuit(t *testing.T, c *framework.Cluster) {
	l := newLBLab(t, c)
	svc := l.service(t, "default", vipBound, corev1.LoadBalancerIPModeVIP, nil)
	l.waitProgrammed(t, svc, vipBound, true)
	l.expectShortCircuit(t, vipBound)
	l.expectProbesFail(t, svc, vipBound)
}

// ForkLBBindingIPModeProxy: ipMode Proxy, no annotation: neither binds the VIP (upstream's own
// rule); probes from the VIP answer 200/503, a pod's traffic goes out to the LB.
func testForkLBBindingIPModeProxy(t *testing.T, c *framework.Cluster) {
	l := newLBLab(t, c)
	svc := l.service(t, "proxy", vipIPModeProxy, corev1.LoadBalancerIPModeProxy, nil)
	l.waitProgrammed(t, svc, vipIPModeProxy, false)
	l.expectProbesAnswer(t, svc, vipIPModeProxy)
	l.expectReachesLB(t, vipIPModeProxy)
}
