package e2e

import (
	"net"
	"testing"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/framework"
	corev1 "k8s.io/api/core/v1"
)

func init() { register("ExternalIP", testExternalIP) }

// externalIPs: an address that belongs to no node, routed via node1 from the client. node1
// binds it to kube-ipvs0 and IPVS sends it to the endpoint on node3, which sees node1's address
// (eTP Cluster: masqueraded).
func testExternalIP(t *testing.T, c *framework.Cluster) {
	const eip = "192.168.200.10"
	ns := c.Namespace(t)
	backend := c.AddPod(t, 3, "eip-a", 8080)
	_ = c.CreateService(t, ns, "echo", []framework.ServicePort{
		{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 8081, Target: 8080},
		{Name: "udp", Protocol: corev1.ProtocolUDP, Port: 8081, Target: 8080},
	}, []*framework.Pod{backend}, func(s *corev1.Service) { s.Spec.ExternalIPs = []string{eip} })
	node1 := c.Node(1)
	c.Net.Client.AddRoute(t, eip, node1.IP)
	addr := net.JoinHostPort(eip, "8081")
	for _, proto := range []string{"tcp", "udp"} {
		r := c.EventuallyEcho(t, c.Net.Client, proto, addr, expectFromNode(backend.Name, node1))
		t.Logf("client -> %s/%s via node1: %s saw %s", addr, proto, r.Pod, r.Client)
		expectVirtualServer(t, c, node1, eip, 8081, proto, ep(backend.IP, 8080))
	}
	expectDummyAddr(t, node1, eip, true)
}
