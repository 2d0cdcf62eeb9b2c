package e2e

// Issue 7 (docs/address-guard.md): never bind or capture an externalIP or LB ingress IP that
// belongs to a node or the apiserver.
//
// node1 plays the control-plane node: it serves the apiserver on its node-network address
// (framework APIServerRelay: node1-ip:<apiserver port>, relayed from node1's namespace to the real
// apiserver), and the kube-proxies of node2 and node3 are restarted with a kubeconfig pointing
// there, as kubelets and kube-proxies reach a control-plane node. node1's own kube-proxy keeps the
// direct path (as one on a control-plane node talks to its local apiserver).

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/framework"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func init() {
	register("ForkAddressGuardExternalIPNodeAddress", func(t *testing.T, c *framework.Cluster) {
		testForkAddressGuard(t, c, false)
	})
	register("ForkAddressGuardLBIngressNodeAddress", func(t *testing.T, c *framework.Cluster) {
		testForkAddressGuard(t, c, true)
	})
	register("ForkAddressGuardExternalIPNoNode", testForkAddressGuardExternalIPNoNode)
}

// guardNegativeWindow: how long upstream's node2/node3 must stay without a Service that node1
// has already programmed (they cannot reach the apiserver any more).
const guardNegativeWindow = 15 * time.Second

// testForkAddressGuard: a Service claims node1's address, as externalIP (lb=false) or as its
// LoadBalancer status ingress (lb=true), port 8888. Upstream: node2/node3 bind it to kube-ipvs0,
// cannot connect to node1's apiserver any more, and a Service created afterwards never reaches
// them. Ours: refused on node2/node3 (Warning AddressRefused on the Service, nothing on
// kube-ipvs0), they keep reaching the apiserver and node1 (whose own kube-proxy serves port 8888
// on its address through IPVS, as upstream), and a new Service is programmed on every node.
func testForkAddressGuard(t *testing.T, c *framework.Cluster, lb bool) {
	node1, node2, node3 := c.Node(1), c.Node(2), c.Node(3)
	workers := []*framework.Node{node2, node3}
	kubeconfig, apiAddr := c.APIServerRelay(t, node1)
	c.WithProxies(t, workers, func(*framework.Node) string { return kubeconfig })
	for _, n := range workers { // precondition: the workers reach the apiserver through node1
		conn, err := n.Dial("tcp", apiAddr, 3*time.Second)
		if err != nil {
			t.Fatalf("%s cannot reach the apiserver at %s before the Service: %v", n.Name, apiAddr, err)
		}
		conn.Close()
	}
	t.Logf("node2 and node3 reach the apiserver through node1 at %s", apiAddr)

	ns := c.Namespace(t)
	backend := c.AddPod(t, 3, "guard-echo", 8080)
	node1IP := node1.IP.String()
	svc := c.CreateService(t, ns, "oops", []framework.ServicePort{
		{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 8888, Target: 8080},
	}, []*framework.Pod{backend}, func(s *corev1.Service) {
		if lb {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
		} else {
			s.Spec.ExternalIPs = []string{node1IP}
		}
	})
	what := "externalIP"
	if lb {
		svc = c.SetLoadBalancerIngress(t, svc, node1IP)
		what = "LB ingress"
	}
	t.Logf("service %s/%s: %s %s port 8888", ns, svc.Name, what, node1IP)

	// node1 serves its own address on 8888 through IPVS (both implementations).
	c.Eventually(t, "node1 has the IPVS virtual server for its own address:8888", func() error {
		_, err := c.IPVSRealServers(node1, node1IP, 8888, "tcp")
		return err
	})

	if c.Impl.Name == "upstream" {
		c.Eventually(t, fmt.Sprintf("node2 and node3 bind %s (node1's address) to kube-ipvs0", node1IP), func() error {
			for _, n := range workers {
				if has, err := n.HasKubeIPVS0Addr(node1IP); err != nil || !has {
					return fmt.Errorf("%s: bound=%v (%v)", n.Name, has, err)
				}
			}
			return nil
		})
		for _, n := range workers {
			if conn, err := n.Dial("tcp", apiAddr, 2*time.Second); err == nil {
				conn.Close()
				t.Fatalf("%s still connects to the apiserver at %s with node1's address bound locally", n.Name, apiAddr)
			} else {
				t.Logf("%s -> apiserver %s: %v (lost, as expected)", n.Name, apiAddr, err)
			}
		}
		after := guardAfterService(t, c, ns, backend)
		c.Eventually(t, "node1 programs the Service created afterwards", func() error {
			_, err := c.IPVSRealServers(node1, after.Spec.ClusterIP, 80, "tcp")
			return err
		})
		deadline := time.Now().Add(guardNegativeWindow)
		for time.Now().Before(deadline) {
			for _, n := range workers {
				if _, err := c.IPVSRealServers(n, after.Spec.ClusterIP, 80, "tcp"); err == nil {
					t.Fatalf("%s programmed %s:80 although it should have lost the apiserver", n.Name, after.Spec.ClusterIP)
				}
			}
			time.Sleep(500 * time.Millisecond)
		}
		t.Logf("node2 and node3 did not program the new Service %v after node1 had it: their kube-proxies stopped syncing", guardNegativeWindow)
		return
	}

	// Ours: node2 and node3 both refuse, and the refusal is on the Service once: a decision
	// every node makes alike is reported by one of them (docs/security.md), never by node1,
	// which owns the address and serves it.
	c.Eventually(t, "one Warning AddressRefused event on the Service naming node1's address", func() error {
		evs, err := serviceEvents(c, ns, svc.Name, "AddressRefused")
		if err != nil {
			return err
		}
		var naming []string
		for _, e := range evs {
			if e.Type == corev1.EventTypeWarning && strings.Contains(e.Message, node1IP) {
				naming = append(naming, e.Message)
			}
		}
		if len(naming) == 0 {
			return fmt.Errorf("no AddressRefused event naming %s yet (%d on the Service)", node1IP, len(evs))
		}
		if len(naming) > 1 {
			return fmt.Errorf("%d AddressRefused events naming %s, want one for the cluster: %q", len(naming), node1IP, naming)
		}
		if !strings.Contains(naming[0], "node "+node1.Name) {
			return fmt.Errorf("the event does not name the owner %s: %s", node1.Name, naming[0])
		}
		t.Logf("event: %s", naming[0])
		return nil
	})
	for _, n := range workers {
		expectDummyAddr(t, n, node1IP, false)
		if _, err := c.IPVSRealServers(n, node1IP, 8888, "tcp"); err == nil {
			t.Fatalf("%s has an IPVS virtual server for %s:8888 (refused address)", n.Name, node1IP)
		}
		conn, err := n.Dial("tcp", apiAddr, 3*time.Second)
		if err != nil {
			t.Fatalf("%s lost the apiserver at %s: %v", n.Name, apiAddr, err)
		}
		conn.Close()
		// ... and node1 itself: node1's IPVS answers on its address:8888.
		r := c.EventuallyEcho(t, n.NS, "tcp", net.JoinHostPort(node1IP, "8888"), nil)
		if r.Pod != backend.Name {
			t.Fatalf("%s -> %s:8888 answered by %s, want %s", n.Name, node1IP, r.Pod, backend.Name)
		}
	}
	after := guardAfterService(t, c, ns, backend)
	c.Eventually(t, "every node programs the Service created afterwards", func() error {
		for _, n := range c.Net.Nodes {
			if _, err := c.IPVSRealServers(n, after.Spec.ClusterIP, 80, "tcp"); err != nil {
				return err
			}
		}
		return nil
	})
}

func guardAfterService(t *testing.T, c *framework.Cluster, ns string, backend *framework.Pod) *corev1.Service {
	t.Helper()
	svc := c.CreateService(t, ns, "after", []framework.ServicePort{
		{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 80, Target: 8080},
	}, []*framework.Pod{backend}, nil)
	t.Logf("service %s/after created afterwards: clusterIP %s", ns, svc.Spec.ClusterIP)
	return svc
}

// ForkAddressGuardExternalIPNoNode: an externalIP on the node network that belongs to no node
// works as upstream in both: bound on every node, served by IPVS, reached from a pod on node1 and
// from the client (routed via node1), no AddressRefused event.
func testForkAddressGuardExternalIPNoNode(t *testing.T, c *framework.Cluster) {
	const eip = "172.30.0.200"
	ns := c.Namespace(t)
	backend := c.AddPod(t, 2, "guard-free", 8080)
	pod := c.AddPod(t, 1, "guard-client", 9999)
	svc := c.CreateService(t, ns, "free", []framework.ServicePort{
		{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 8888, Target: 8080},
	}, []*framework.Pod{backend}, func(s *corev1.Service) { s.Spec.ExternalIPs = []string{eip} })
	addr := net.JoinHostPort(eip, "8888")
	// The virtual server can exist before its real server: a proxier may sync the Service before
	// the EndpointSlice reaches it (seen in CI: node1 with no real server yet), so wait for both.
	c.Eventually(t, "every node binds the externalIP and has its virtual server with the backend", func() error {
		for _, n := range c.Net.Nodes {
			if has, err := n.HasKubeIPVS0Addr(eip); err != nil || !has {
				return fmt.Errorf("%s: %s on kube-ipvs0=%v (%v)", n.Name, eip, has, err)
			}
			if err := virtualServerMismatch(c, n, eip, 8888, "tcp", ep(backend.IP, 8080)); err != nil {
				return err
			}
		}
		return nil
	})
	c.EventuallyEcho(t, pod.NS, "tcp", addr, func(r framework.Reply) error {
		if r.Pod != backend.Name {
			return fmt.Errorf("answered by %q", r.Pod)
		}
		return nil
	})
	// The client routes the externalIP via node1 (as a router in front of the cluster would):
	// on the shared /24 every node answers ARP for it, and a flip between nodes mid-connection
	// breaks the connection.
	c.Net.Client.AddRoute(t, eip, c.Node(1).IP)
	c.EventuallyEcho(t, c.Net.Client, "tcp", addr, func(r framework.Reply) error {
		if r.Pod != backend.Name {
			return fmt.Errorf("answered by %q", r.Pod)
		}
		return nil
	})
	evs, err := c.Client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs.Items {
		if e.InvolvedObject.Name == svc.Name && e.Reason == "AddressRefused" {
			t.Fatalf("unexpected event on %s: %s %s", svc.Name, e.Reason, e.Message)
		}
	}
}
