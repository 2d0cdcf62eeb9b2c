package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/framework"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestDemo is `make demo` (hack/e2e.sh demo, E2E_DEMO=1): the lab cluster with OUR kube-proxy
// on every node, one Service of each type, requests from a pod and from the client, what the
// kernel holds, and where the fork's fixes show. It prints a walk-through to stdout and writes
// it to $E2E_ARTIFACTS/demo.txt; everything is torn down at the end.
func TestDemo(t *testing.T) {
	if os.Getenv("E2E_DEMO") == "" {
		t.Skip("the demo runs with hack/e2e.sh demo (make demo)")
	}
	if skipReason != "" {
		t.Fatal(skipReason)
	}
	ours, ok := cfg.FindImpl("ours")
	if !ok || ours.Unavailable() != "" {
		t.Fatalf("our kube-proxy is needed (make build): %s", ours.Unavailable())
	}
	var text strings.Builder
	say := func(format string, args ...any) {
		s := fmt.Sprintf(format, args...)
		fmt.Print(s)
		text.WriteString(s)
	}
	defer func() {
		if cfg.Artifacts != "" {
			_ = os.WriteFile(filepath.Join(cfg.Artifacts, "demo.txt"), []byte(text.String()), 0o644)
		}
	}()
	ver, _ := exec.Command(ours.Binary, "--version").CombinedOutput()
	say("\n== kube-proxy-ipvs demo ==\n")
	say("Lab: 3 node namespaces (node1..3 = 172.30.0.11..13) on a bridge, pod network 10.244.0.0/16 over\n"+
		"flannel-style VXLAN, a client outside the cluster (172.30.0.100), a real kube-apiserver.\n"+
		"kube-proxy on every node: %s (--proxy-mode=ipvs)\n\n", strings.TrimSpace(string(ver)))
	start := time.Now()
	c, skip := framework.StartClusterPrefixed(t, cfg, client, ours, "d")
	if skip != "" {
		t.Fatal(skip)
	}
	say("cluster up in %v\n\n", time.Since(start).Round(time.Second))
	ns := c.Namespace(t)
	web1 := c.AddPod(t, 2, "web-1", 8080)
	web2 := c.AddPod(t, 3, "web-2", 8080)
	cl := c.AddPod(t, 1, "client-pod", 9999)
	say("Pods: web-1 %s on node2, web-2 %s on node3, client-pod %s on node1\n", web1.IP, web2.IP, cl.IP)
	tcp := []framework.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, Target: 8080}}
	both := []*framework.Pod{web1, web2}
	cip := c.CreateService(t, ns, "web", tcp, both, nil)
	np := c.CreateService(t, ns, "web-nodeport", tcp, both, func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort })
	lb := c.CreateService(t, ns, "web-lb", tcp, []*framework.Pod{web1}, func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeLoadBalancer
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	})
	lb = c.SetLoadBalancerIngress(t, lb, "192.168.100.50")
	lbu := c.CreateService(t, ns, "web-lb-unbound", tcp, both, func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeLoadBalancer
		s.Annotations = map[string]string{"kube-proxy-ipvs.io/bind-lb-ingress": "false"}
	})
	c.SetLoadBalancerIngress(t, lbu, "192.168.100.51")
	c.CreateService(t, ns, "web-external", tcp, both, func(s *corev1.Service) { s.Spec.ExternalIPs = []string{"192.168.200.50"} })
	c.CreateService(t, ns, "web-bad-external", tcp, both, func(s *corev1.Service) { s.Spec.ExternalIPs = []string{framework.NodeIP(2).String()} })
	say("Services in namespace %s:\n", ns)
	say("  web               ClusterIP    %s:80 -> web-1, web-2\n", cip.Spec.ClusterIP)
	say("  web-nodeport      NodePort     <node>:%d -> web-1, web-2 (externalTrafficPolicy Cluster)\n", np.Spec.Ports[0].NodePort)
	say("  web-lb            LoadBalancer 192.168.100.50:80 (ingress set by the harness, ipMode VIP), eTP Local -> web-1 (node2), healthCheckNodePort %d\n", lb.Spec.HealthCheckNodePort)
	say("  web-lb-unbound    LoadBalancer 192.168.100.51:80, annotation kube-proxy-ipvs.io/bind-lb-ingress=false\n")
	say("  web-external      externalIPs  192.168.200.50:80 -> web-1, web-2\n")
	say("  web-bad-external  externalIPs  %s:80 (node2's own address!)\n\n", framework.NodeIP(2))

	node1, node2 := c.Node(1), c.Node(2)
	c.Net.Client.AddRoute(t, "192.168.100.50", node2.IP)
	c.Net.Client.AddRoute(t, "192.168.200.50", node1.IP)
	say("Requests (who answered, and the source address the pod saw):\n")
	show := func(from *framework.NS, what, addr string, n int) {
		c.EventuallyEcho(t, from, "tcp", addr, nil)
		for i := 0; i < n; i++ {
			r, err := framework.Echo(from, "tcp", addr, 3*time.Second)
			if err != nil {
				say("  %-44s %-22s -> ERROR %v\n", what, addr, err)
				t.Errorf("%s: %v", what, err)
				continue
			}
			say("  %-44s %-22s -> %-6s saw %s\n", what, addr, r.Pod, r.ClientIP())
		}
	}
	show(cl.NS, "client-pod (node1) -> ClusterIP", net.JoinHostPort(cip.Spec.ClusterIP, "80"), 4)
	show(node1.NS, "node1 host network -> ClusterIP", net.JoinHostPort(cip.Spec.ClusterIP, "80"), 2)
	show(c.Net.Client, "client -> NodePort on node1 (SNAT to node1)", fmt.Sprintf("%s:%d", node1.IP, np.Spec.Ports[0].NodePort), 2)
	show(c.Net.Client, "client -> LB VIP routed to node2 (eTP Local)", "192.168.100.50:80", 2)
	show(c.Net.Client, "client -> externalIP routed to node1", "192.168.200.50:80", 2)
	say("  (eTP Local keeps the client's address 172.30.0.100; Cluster policy masquerades to the node)\n")
	say("\nLB health check (GET /healthz on healthCheckNodePort %d from the client):\n", lb.Spec.HealthCheckNodePort)
	for i := 1; i <= 3; i++ {
		code, _, err := c.Net.Client.HTTPGet(fmt.Sprintf("http://%s:%d/healthz", c.Node(i).IP, lb.Spec.HealthCheckNodePort), 3*time.Second)
		say("  node%d: HTTP %d %v\n", i, code, errOrEmpty(err))
	}

	say("\nWhere the fork's fixes show:\n")
	// Give the refusal a sync to happen (it is logged, counted and reported as an Event).
	var events []string
	c.Eventually(t, "AddressRefused events", func() error {
		evs, err := c.Client.EventsV1().Events(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return err
		}
		events = events[:0]
		for _, e := range evs.Items {
			events = append(events, fmt.Sprintf("%s %s/%s: %s", e.Reason, e.Regarding.Kind, e.Regarding.Name, e.Note))
		}
		if len(events) == 0 {
			return fmt.Errorf("no events yet")
		}
		return nil
	})
	for i := 1; i <= 3; i++ {
		addrs, _, _ := c.Node(i).AddrsOf("kube-ipvs0")
		say("  node%d kube-ipvs0: %s\n", i, strings.Join(addrs, " "))
	}
	say("  -> 192.168.100.50 is bound (default --ipvs-bind-lb-ingress=true, as upstream); 192.168.100.51 is not\n" +
		"     (its annotation kube-proxy-ipvs.io/bind-lb-ingress=false: the LB's own health checks/hairpin reach it).\n")
	say("  -> %s (node2's address) is on no kube-ipvs0: upstream would bind it on node1 and node3 and cut\n"+
		"     them off node2. Events:\n", framework.NodeIP(2))
	for _, e := range events {
		say("       %s\n", e)
	}
	say("\nWhat our kube-proxy programmed (ipvsadm -Ln, per node):\n")
	for i := 1; i <= 3; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := c.Node(i).Run(ctx, "ipvsadm", "-Ln")
		cancel()
		if err != nil {
			t.Errorf("ipvsadm on node%d: %v", i, err)
		}
		say("--- node%d\n%s", i, out)
	}
	say("\nTearing down (Services, pods, node namespaces, kube-proxies).\n")
}

func errOrEmpty(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
