package e2e

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/framework"
	corev1 "k8s.io/api/core/v1"
)

// expectFrom returns a check that the reply came from pod ("": any), seeing clientIP as the source.
func expectFrom(pod, clientIP string) func(framework.Reply) error {
	return func(r framework.Reply) error {
		if pod != "" && r.Pod != pod { // "" accepts any pod
			return fmt.Errorf("answered by %q, want %q", r.Pod, pod)
		}
		if r.ClientIP() != clientIP {
			return fmt.Errorf("%s saw client %s, want %s (source must not be NATed)", r.Pod, r.Client, clientIP)
		}
		return nil
	}
}

// ClusterIP reached from a pod on another node: node1's IPVS DNATs to the only endpoint, which
// lives on node2; the packet crosses the VXLAN pod network; the backend sees the client pod's own
// address (pod-to-service traffic from inside the cluster CIDR is not masqueraded). TCP and UDP.
func testClusterIPFromRemotePod(t *testing.T, c *framework.Cluster) {
	ns := c.Namespace(t)
	backend := c.AddPod(t, 2, "echo-a", 8080)
	client := c.AddPod(t, 1, "client-a", 9999)
	svc := c.CreateService(t, ns, "echo", []framework.ServicePort{
		{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 80, Target: 8080},
		{Name: "udp", Protocol: corev1.ProtocolUDP, Port: 80, Target: 8080},
	}, []*framework.Pod{backend}, nil)
	vip := svc.Spec.ClusterIP
	addr := net.JoinHostPort(vip, "80")
	t.Logf("service %s/%s clusterIP %s -> %s (%s)", ns, svc.Name, vip, backend.IP, backend.Node.Name)

	for _, proto := range []string{"tcp", "udp"} {
		c.EventuallyEcho(t, client.NS, proto, addr, expectFrom(backend.Name, client.IP.String()))
		dests, err := c.IPVSDestinations(client.Node, vip, 80, proto)
		if err != nil {
			t.Fatalf("IPVS read-back on %s: %v", client.Node.Name, err)
		}
		want := net.JoinHostPort(backend.IP.String(), "8080")
		if len(dests) != 1 || dests[0] != want {
			t.Fatalf("IPVS %s %s on %s: real servers %v, want [%s]", proto, addr, client.Node.Name, dests, want)
		}
	}
}

// ClusterIP with two endpoints on two other nodes: IPVS round-robin spreads new connections over
// both; after the EndpointSlice drops one, only the other answers and IPVS holds one real server.
func testClusterIPEndpointsUpdate(t *testing.T, c *framework.Cluster) {
	ns := c.Namespace(t)
	b1 := c.AddPod(t, 2, "echo-b1", 8080)
	b2 := c.AddPod(t, 3, "echo-b2", 8080)
	client := c.AddPod(t, 1, "client-b", 9999)
	svc := c.CreateService(t, ns, "echo", []framework.ServicePort{
		{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 8000, Target: 8080},
	}, []*framework.Pod{b1, b2}, nil)
	addr := net.JoinHostPort(svc.Spec.ClusterIP, "8000")

	c.EventuallyEcho(t, client.NS, "tcp", addr, nil)
	seen := map[string]int{}
	c.Eventually(t, "both endpoints answer", func() error {
		r, err := framework.Echo(client.NS, "tcp", addr, 2*time.Second)
		if err != nil {
			return err
		}
		seen[r.Pod]++
		if seen[b1.Name] == 0 || seen[b2.Name] == 0 {
			return fmt.Errorf("answers so far: %v", seen)
		}
		return nil
	})
	t.Logf("answers: %v", seen)

	c.SetEndpoints(t, svc, []*framework.Pod{b2})
	c.Eventually(t, "IPVS stops sending to the removed endpoint (weight 0 or gone)", func() error {
		dests, err := c.IPVSDestinations(client.Node, svc.Spec.ClusterIP, 8000, "tcp")
		if err != nil {
			return err
		}
		if len(dests) != 1 || dests[0] != net.JoinHostPort(b2.IP.String(), "8080") {
			return fmt.Errorf("real servers %v", dests)
		}
		return nil
	})
	for i := 0; i < 6; i++ {
		r, err := framework.Echo(client.NS, "tcp", addr, 3*time.Second)
		if err != nil {
			t.Fatalf("after the update: %v", err)
		}
		if r.Pod != b2.Name {
			t.Fatalf("after the update, answered by %s, want only %s", r.Pod, b2.Name)
		}
	}
}

// NodePort reached from outside the cluster (the client namespace) on node1, endpoint on node2:
// the backend answers, and sees node1 (SNAT) rather than the client, as IPVS NAT + the
// KUBE-POSTROUTING masquerade do for externalTrafficPolicy=Cluster.
func testNodePortFromOutside(t *testing.T, c *framework.Cluster) {
	ns := c.Namespace(t)
	backend := c.AddPod(t, 2, "echo-c", 8080)
	svc := c.CreateService(t, ns, "echo", []framework.ServicePort{
		{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 80, Target: 8080},
		{Name: "udp", Protocol: corev1.ProtocolUDP, Port: 80, Target: 8080},
	}, []*framework.Pod{backend}, func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort })
	node1 := c.Node(1)
	node1Addrs := map[string]bool{node1.IP.String(): true, node1.PodCIDR.IP.String(): true}
	for i, proto := range []string{"tcp", "udp"} {
		np := svc.Spec.Ports[i].NodePort
		addr := net.JoinHostPort(node1.IP.String(), fmt.Sprint(np))
		c.EventuallyEcho(t, c.Net.Client, proto, addr, func(r framework.Reply) error {
			if r.Pod != backend.Name {
				return fmt.Errorf("answered by %q", r.Pod)
			}
			if !node1Addrs[r.ClientIP()] {
				return fmt.Errorf("backend saw %s, want one of node1's addresses %v (masquerade)", r.Client, node1Addrs)
			}
			return nil
		})
	}
}
