package e2e

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/framework"
	corev1 "k8s.io/api/core/v1"
)

// TestSwap (runs once, with both implementations): a live swap on node1, upstream -> ours ->
// upstream, with no flush in between. A Service of every kind (ClusterIP, NodePort,
// LoadBalancer ingress, externalIP; TCP and UDP) is programmed by upstream; an established TCP
// connection through the ClusterIP keeps echoing across each swap; after each swap node1's IPVS
// virtual servers, real servers and kube-ipvs0 (link and addresses) read back identical, and no
// connection counter went back (no virtual server was deleted and re-created).
func TestSwap(t *testing.T) {
	if skipReason != "" {
		t.Skip(skipReason)
	}
	up, ours := bothImpls(t)
	c, skip := framework.StartClusterPrefixed(t, cfg, client, up, "s")
	if skip != "" {
		t.Skip(skip)
	}
	ns := c.Namespace(t)
	backend := c.AddPod(t, 2, "swap-a", 8080)
	backend2 := c.AddPod(t, 3, "swap-b", 8080)
	cl := c.AddPod(t, 1, "swap-client", 9999)
	svc := c.CreateService(t, ns, "echo", []framework.ServicePort{
		{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 80, Target: 8080},
		{Name: "udp", Protocol: corev1.ProtocolUDP, Port: 80, Target: 8080},
	}, []*framework.Pod{backend, backend2}, func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeLoadBalancer
		s.Spec.ExternalIPs = []string{"192.168.200.20"}
	})
	c.SetLoadBalancerIngress(t, svc, "192.168.100.20")
	addr := net.JoinHostPort(svc.Spec.ClusterIP, "80")
	node1 := c.Node(1)
	c.Eventually(t, "LB ingress and externalIP on node1's kube-ipvs0", func() error {
		_, err := c.IPVSRealServers(node1, "192.168.100.20", 80, "tcp")
		if err == nil {
			_, err = c.IPVSRealServers(node1, "192.168.200.20", 80, "udp")
		}
		return err
	})
	c.EventuallyEcho(t, cl.NS, "tcp", addr, expectFrom("", cl.IP.String()))
	conn, err := framework.OpenStream(cl.NS, addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Logf("established connection to %s via %s", conn.Reply.Pod, addr)
	// Wait until the kernel's counters (folded in by its rate estimator) show our connections, so
	// that a virtual server re-created by a swap would show as a counter going back.
	before := c.StableIPVSCounted(t, node1, addr)
	for i, im := range []framework.Impl{ours, up} {
		c.ReplaceProxy(t, 1, im)
		if err := conn.Ping("after-swap-to-" + im.Name); err != nil {
			t.Fatalf("swap %d (to %s): established connection broke: %v", i+1, im.Name, err)
		}
		for _, proto := range []string{"tcp", "udp"} {
			c.EventuallyEcho(t, cl.NS, proto, addr, expectFrom("", cl.IP.String()))
		}
		after := c.StableIPVS(t, node1)
		if d := before.Diff(after); len(d) > 0 {
			c.DumpState(t)
			t.Fatalf("swap %d (to %s): node1's kernel state changed:\n%s", i+1, im.Name, strings.Join(d, "\n"))
		}
		t.Logf("swap %d (to %s): %d virtual servers, kube-ipvs0 %v identical; connection to %s still echoes",
			i+1, im.Name, len(after.Services), after.DummyAddrs, conn.Reply.Pod)
		before = after
	}
}
