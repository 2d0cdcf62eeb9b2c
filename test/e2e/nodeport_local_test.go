package e2e

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/framework"
	corev1 "k8s.io/api/core/v1"
)

func init() { register("NodePortLocal", testNodePortLocal) }

// NodePort with externalTrafficPolicy Local (a LoadBalancer Service without ingress, for its
// healthCheckNodePort), the only endpoint on node2, reached from the client
// (outside the cluster): on node2 the pod answers and sees the client's own address (no SNAT);
// node1 and node3 (no local endpoint) do not answer. The healthCheckNodePort (GET /healthz from
// the client) answers 200 on node2 and 503 on node1 and node3. (eTP Cluster: NodePortFromOutside.)
func testNodePortLocal(t *testing.T, c *framework.Cluster) {
	ns := c.Namespace(t)
	backend := c.AddPod(t, 2, "npl-a", 8080)
	svc := c.CreateService(t, ns, "echo", []framework.ServicePort{
		{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 80, Target: 8080},
		{Name: "udp", Protocol: corev1.ProtocolUDP, Port: 80, Target: 8080},
	}, []*framework.Pod{backend}, func(s *corev1.Service) {
		// A healthCheckNodePort is only allocated for type LoadBalancer; with no ingress IP in its
		// status it is a NodePort Service as far as the nodes are concerned.
		s.Spec.Type = corev1.ServiceTypeLoadBalancer
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	})
	hc := svc.Spec.HealthCheckNodePort
	if hc == 0 {
		t.Fatalf("no healthCheckNodePort allocated")
	}
	for i, proto := range []string{"tcp", "udp"} {
		np := fmt.Sprint(svc.Spec.Ports[i].NodePort)
		r := c.EventuallyEcho(t, c.Net.Client, proto, net.JoinHostPort(c.Node(2).IP.String(), np), expectFrom(backend.Name, framework.ClientIP))
		t.Logf("%s node2:%s -> %s saw %s (client IP preserved)", proto, np, r.Pod, r.Client)
	}
	want := map[int]int{1: 503, 2: 200, 3: 503}
	for i := 1; i <= 3; i++ {
		url := fmt.Sprintf("http://%s:%d/healthz", c.Node(i).IP, hc)
		c.Eventually(t, fmt.Sprintf("GET %s answers %d", url, want[i]), func() error {
			code, body, err := c.Net.Client.HTTPGet(url, 3*time.Second)
			if err != nil {
				return err
			}
			if code != want[i] {
				return fmt.Errorf("HTTP %d (%.200s), want %d", code, body, want[i])
			}
			return nil
		})
	}
	// Nodes without a local endpoint: no answer (TCP). Checked only once the health check says
	// 503 there: a proxier updates its health check server at the end of the sync that programs
	// the Service, and upstream writes the IPVS virtual server before the ipsets, so in the
	// middle of that sync the NodePort is briefly reachable through SNAT (seen in CI: answered
	// with client 10.244.3.0). (Read back: upstream and ours alike keep node2's pod as a real
	// server of node1's NodePort virtual server; without SNAT the pod's reply presumably goes
	// straight to the client, which drops it.)
	np := fmt.Sprint(svc.Spec.Ports[0].NodePort)
	for _, i := range []int{1, 3} {
		n := c.Node(i)
		mustNotAnswer(t, c.Net.Client, "tcp", net.JoinHostPort(n.IP.String(), np), 2)
	}
	expectVirtualServer(t, c, c.Node(2), c.Node(2).IP.String(), uint16(svc.Spec.Ports[0].NodePort), "tcp", ep(backend.IP, 8080))
}
