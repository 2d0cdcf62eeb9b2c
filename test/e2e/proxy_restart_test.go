package e2e

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/framework"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func init() { register("ProxyRestart", testProxyRestart) }

// kube-proxy restart on node1 with an established TCP connection through a ClusterIP: SIGTERM,
// the connection still echoes while no kube-proxy runs, start again, it echoes after the new
// one has synced; the new one adopts the kernel state: IPVS virtual servers, their real servers
// and kube-ipvs0 read back identical, and no virtual server's connection counter went back
// (none was deleted and re-created).
func testProxyRestart(t *testing.T, c *framework.Cluster) {
	ns := c.Namespace(t)
	backend := c.AddPod(t, 2, "rst-a", 8080)
	client := c.AddPod(t, 1, "rst-client", 9999)
	svc := c.CreateService(t, ns, "echo", []framework.ServicePort{
		{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 80, Target: 8080},
	}, []*framework.Pod{backend}, nil)
	addr := net.JoinHostPort(svc.Spec.ClusterIP, "80")
	c.EventuallyEcho(t, client.NS, "tcp", addr, expectFrom(backend.Name, client.IP.String()))
	conn, err := framework.OpenStream(client.NS, addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	node1 := c.Node(1)
	// Let node1's proxy finish applying earlier scenarios' deletions: a complete sync after now.
	ctx, cancel := context.WithTimeout(context.Background(), c.Cfg.Timeout)
	defer cancel()
	if err := c.ProxyOn(1).WaitSynced(ctx, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	// The kernel's per-service counters are folded in by its rate estimator (every 2 s): wait
	// until our connections show, so that a re-created virtual server would be seen (counter
	// going back to 0).
	before := c.StableIPVSCounted(t, node1, addr)

	// Virtual servers of Services deleted by earlier scenarios may still be draining (graceful
	// termination: a weight-0 real server with connections, e.g. NodePortLocal's unanswered
	// ones). Only the state of live Services is compared: upstream's restart drops the draining
	// ones, ours re-adopts them (logged).
	if stale := pruneStale(t, c, before); len(stale) > 0 {
		t.Logf("before the restart, state of deleted Services (draining, not compared): %v", stale)
	}
	old := c.ProxyOn(1)
	old.Stop()
	if err := conn.Ping("while-down"); err != nil {
		t.Fatalf("with kube-proxy stopped: %v", err)
	}
	c.StartProxyOn(t, 1, old.Impl)
	if err := conn.Ping("after-restart"); err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	c.EventuallyEcho(t, client.NS, "tcp", addr, expectFrom(backend.Name, client.IP.String()))
	after, err := framework.ReadIPVS(node1)
	if err != nil {
		t.Fatal(err)
	}
	if stale := pruneStale(t, c, after); len(stale) > 0 {
		t.Logf("after the restart, state of deleted Services (draining, not compared): %v", stale)
	}
	if d := before.Diff(after); len(d) > 0 {
		c.DumpState(t)
		t.Fatalf("kernel state changed across the restart:\n%s", strings.Join(d, "\n"))
	}
	t.Logf("restart adopted %d virtual servers and %d kube-ipvs0 addresses unchanged; %s counted %d -> %d connections",
		len(after.Services), len(after.DummyAddrs), addr, before.Services["TCP "+addr].Conns, after.Services["TCP "+addr].Conns)
}

// pruneStale removes from st the virtual servers and kube-ipvs0 addresses that belong to no
// live Service (no Service has the address, nor the port as a nodePort), and returns them.
func pruneStale(t *testing.T, c *framework.Cluster, st *framework.IPVSState) []string {
	t.Helper()
	svcs, err := c.Client.CoreV1().Services("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ips, nodePorts := map[string]bool{}, map[string]bool{}
	for _, s := range svcs.Items {
		for _, ip := range append(append([]string{}, s.Spec.ClusterIPs...), s.Spec.ExternalIPs...) {
			ips[ip] = true
		}
		for _, in := range s.Status.LoadBalancer.Ingress {
			ips[in.IP] = true
		}
		for _, p := range s.Spec.Ports {
			if p.NodePort != 0 {
				nodePorts[fmt.Sprint(p.NodePort)] = true
			}
		}
	}
	var stale []string
	for k := range st.Services {
		_, hp, _ := strings.Cut(k, " ")
		ip, port, err := net.SplitHostPort(hp)
		if err != nil || ips[ip] || nodePorts[port] {
			continue
		}
		stale = append(stale, "virtual server "+k)
		delete(st.Services, k)
	}
	var keep []string
	for _, a := range st.DummyAddrs {
		if ips[a] {
			keep = append(keep, a)
		} else {
			stale = append(stale, "kube-ipvs0 address "+a)
		}
	}
	st.DummyAddrs = keep
	sort.Strings(stale)
	return stale
}
