package e2e

import (
	"net"
	"testing"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/framework"
	corev1 "k8s.io/api/core/v1"
)

func init() { register("LoadBalancerVIP", testLoadBalancerVIP) }

// LoadBalancer whose status.loadBalancer.ingress the harness sets (ipMode VIP), eTP Cluster, the
// only endpoint on node2. The client routes the VIP via node1 (as a load balancer would forward
// to a node): node1 binds it to kube-ipvs0, IPVS sends it to node2's pod, which sees node1's
// address. A pod on node3 reaches the VIP too (captured by node3's own IPVS).
func testLoadBalancerVIP(t *testing.T, c *framework.Cluster) {
	const vip = "192.168.100.10"
	ns := c.Namespace(t)
	backend := c.AddPod(t, 2, "lb-a", 8080)
	client := c.AddPod(t, 3, "lb-client", 9999)
	svc := c.CreateService(t, ns, "echo", []framework.ServicePort{
		{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 80, Target: 8080},
	}, []*framework.Pod{backend}, func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeLoadBalancer })
	c.SetLoadBalancerIngress(t, svc, vip)
	node1, node3 := c.Node(1), c.Node(3)
	c.Net.Client.AddRoute(t, vip, node1.IP)
	addr := net.JoinHostPort(vip, "80")

	r := c.EventuallyEcho(t, c.Net.Client, "tcp", addr, expectFromNode(backend.Name, node1))
	t.Logf("client -> %s via node1: %s saw %s", addr, r.Pod, r.Client)
	expectDummyAddr(t, node1, vip, true)
	expectVirtualServer(t, c, node1, vip, 80, "tcp", ep(backend.IP, 8080))

	r = c.EventuallyEcho(t, client.NS, "tcp", addr, expectFromNode(backend.Name, node3))
	t.Logf("pod on node3 -> %s: %s saw %s", addr, r.Pod, r.Client)
	expectDummyAddr(t, node3, vip, true)
}
