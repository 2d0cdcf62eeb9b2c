package e2e

import (
	"net"
	"testing"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/framework"
	corev1 "k8s.io/api/core/v1"
)

func init() { register("ClusterIPFromNode", testClusterIPFromNode) }

// ClusterIP from node1's host network namespace (no pod): once with the only endpoint on node2
// (across the VXLAN), once with it on node1 itself. IPVS on node1 catches the locally generated
// packet (the ClusterIP is on kube-ipvs0); the pod answers and sees one of node1's addresses
// (traffic from outside the cluster CIDR to a ClusterIP is masqueraded), never the VIP.
func testClusterIPFromNode(t *testing.T, c *framework.Cluster) {
	ns := c.Namespace(t)
	node1 := c.Node(1)
	remote := c.AddPod(t, 2, "hn-remote", 8080)
	local := c.AddPod(t, 1, "hn-local", 8080)
	for _, tc := range []struct {
		name string
		pod  *framework.Pod
	}{{"remote", remote}, {"local", local}} {
		svc := c.CreateService(t, ns, "echo-"+tc.name, []framework.ServicePort{
			{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 80, Target: 8080},
			{Name: "udp", Protocol: corev1.ProtocolUDP, Port: 80, Target: 8080},
		}, []*framework.Pod{tc.pod}, nil)
		addr := net.JoinHostPort(svc.Spec.ClusterIP, "80")
		for _, proto := range []string{"tcp", "udp"} {
			r := c.EventuallyEcho(t, node1.NS, proto, addr, expectFromNode(tc.pod.Name, node1))
			t.Logf("%s endpoint (%s): %s %s from node1's host network answered by %s, source seen %s", tc.name, tc.pod.Node.Name, proto, addr, r.Pod, r.Client)
			expectVirtualServer(t, c, node1, svc.Spec.ClusterIP, 80, proto, ep(tc.pod.IP, 8080))
		}
		expectDummyAddr(t, node1, svc.Spec.ClusterIP, true)
	}
}
