package e2e

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/framework"
	corev1 "k8s.io/api/core/v1"
)

func init() { register("SessionAffinityClientIP", testSessionAffinityClientIP) }

// sessionAffinity ClientIP with two endpoints (node2, node3): every connection from one client
// pod lands on the same pod (round-robin alone would alternate); IPVS holds a persistent virtual
// server (flag 0x1) with the default timeout 10800 s.
func testSessionAffinityClientIP(t *testing.T, c *framework.Cluster) {
	ns := c.Namespace(t)
	b1 := c.AddPod(t, 2, "aff-a", 8080)
	b2 := c.AddPod(t, 3, "aff-b", 8080)
	client := c.AddPod(t, 1, "aff-client", 9999)
	svc := c.CreateService(t, ns, "echo", []framework.ServicePort{
		{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 80, Target: 8080},
	}, []*framework.Pod{b1, b2}, func(s *corev1.Service) { s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP })
	addr := net.JoinHostPort(svc.Spec.ClusterIP, "80")
	c.Eventually(t, "persistent virtual server with both real servers", func() error {
		rs, err := c.IPVSRealServers(client.Node, svc.Spec.ClusterIP, 80, "tcp")
		if err != nil {
			return err
		}
		if len(rs) != 2 {
			return fmt.Errorf("real servers %v", rs)
		}
		return nil
	})
	first := c.EventuallyEcho(t, client.NS, "tcp", addr, func(r framework.Reply) error {
		if r.ClientIP() != client.IP.String() {
			return fmt.Errorf("%s saw %s, want %s", r.Pod, r.Client, client.IP)
		}
		return nil
	})
	for i := 0; i < 8; i++ {
		r, err := framework.Echo(client.NS, "tcp", addr, 3*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		if r.Pod != first.Pod || r.ClientIP() != client.IP.String() {
			t.Fatalf("connection %d answered by %s (saw %s), want %s: affinity broken", i, r.Pod, r.Client, first.Pod)
		}
	}
	st, err := framework.ReadIPVS(client.Node)
	if err != nil {
		t.Fatal(err)
	}
	vs := st.Services["TCP "+addr]
	if vs.Flags&0x1 == 0 || vs.Timeout != 10800 {
		t.Fatalf("IPVS %s: flags %#x timeout %d, want persistent (0x1) with timeout 10800", addr, vs.Flags, vs.Timeout)
	}
	t.Logf("9 connections all answered by %s; IPVS flags %#x timeout %ds", first.Pod, vs.Flags, vs.Timeout)
}
