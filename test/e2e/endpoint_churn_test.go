package e2e

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/framework"
	corev1 "k8s.io/api/core/v1"
)

func init() { register("EndpointChurnGraceful", testEndpointChurnGraceful) }

// Endpoint churn with graceful termination: a long-lived TCP connection to endpoint A, then A is
// removed from the EndpointSlice. IPVS keeps A as a real server with weight 0 while the
// connection lives (read back), the connection keeps echoing data sent after the removal, and
// every new connection goes to B.
func testEndpointChurnGraceful(t *testing.T, c *framework.Cluster) {
	ns := c.Namespace(t)
	a := c.AddPod(t, 2, "churn-a", 8080)
	b := c.AddPod(t, 3, "churn-b", 8080)
	client := c.AddPod(t, 1, "churn-client", 9999)
	svc := c.CreateService(t, ns, "echo", []framework.ServicePort{
		{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 80, Target: 8080},
	}, []*framework.Pod{a, b}, nil)
	vip := svc.Spec.ClusterIP
	addr := net.JoinHostPort(vip, "80")
	c.Eventually(t, "both real servers programmed", func() error {
		d, err := c.IPVSDestinations(client.Node, vip, 80, "tcp")
		if err != nil || len(d) != 2 {
			return fmt.Errorf("real servers %v (%v)", d, err)
		}
		return nil
	})
	// Open connections until one lands on A (round-robin: within a few).
	var conn *framework.StreamConn
	for i := 0; i < 10 && conn == nil; i++ {
		s, err := framework.OpenStream(client.NS, addr, 5*time.Second)
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		if s.Reply.Pod == a.Name {
			conn = s
		} else {
			defer s.Close()
		}
	}
	if conn == nil {
		t.Fatalf("no connection landed on %s", a.Name)
	}
	defer conn.Close()
	t.Logf("long-lived connection to %s (it saw %s)", conn.Reply.Pod, conn.Reply.Client)

	c.SetEndpoints(t, svc, []*framework.Pod{b})
	c.Eventually(t, "A drained: weight 0 (connection still open), B weight > 0", func() error {
		rs, err := c.IPVSRealServers(client.Node, vip, 80, "tcp")
		if err != nil {
			return err
		}
		w := map[string]int{}
		for _, r := range rs {
			w[r.Addr] = r.Weight
		}
		wa, hasA := w[ep(a.IP, 8080)]
		if len(rs) != 2 || !hasA || wa != 0 || w[ep(b.IP, 8080)] == 0 {
			return fmt.Errorf("real servers %v", rs)
		}
		return nil
	})
	for i := 0; i < 3; i++ {
		if err := conn.Ping(fmt.Sprintf("after-removal-%d", i)); err != nil {
			t.Fatalf("long-lived connection to the removed endpoint broke: %v", err)
		}
	}
	for i := 0; i < 6; i++ {
		r, err := framework.Echo(client.NS, "tcp", addr, 3*time.Second)
		if err != nil {
			t.Fatalf("new connection %d: %v", i, err)
		}
		if r.Pod != b.Name {
			t.Fatalf("new connection %d answered by %s, want only %s", i, r.Pod, b.Name)
		}
	}
	if err := conn.Ping("still-there"); err != nil {
		t.Fatal(err)
	}
}
