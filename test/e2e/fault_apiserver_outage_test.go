package e2e

// Fault: the apiserver unreachable from node1 for E2E_OUTAGE (default 5m), then back.
//
// Before: Services "echo" (endpoints on node2 and node3) and "gone" programmed on node1, and an
// established TCP connection from a pod on node1 through echo's cluster IP. The outage drops
// every packet between node1 and the apiserver (framework.CutOff, in the guest's root
// namespace, which routes the node network to QEMU's uplink); node2 and node3 keep their path.
// During it: echo loses the endpoint the connection does not use, "gone" is deleted, "fresh" is
// created. Every 15 s of the outage node1's kernel is read back: identical to before it (no
// virtual server, real server, kube-ipvs0 address, KUBE-* ipset entry or iptables rule of a live
// Service flushed or changed, no virtual server re-created, none of the changes applied), the
// connection echoes, kube-proxy still runs; node2 applies the changes.
// After: node1 applies all three changes within the sync timeout of the path's return (the time
// is logged), and the connection still echoes.

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/framework"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func init() { register("FaultAPIServerOutage", testFaultAPIServerOutage) }

// outageLength is E2E_OUTAGE (a Go duration), 5 minutes by default.
func outageLength() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("E2E_OUTAGE")); err == nil && d > 0 {
		return d
	}
	return 5 * time.Minute
}

func testFaultAPIServerOutage(t *testing.T, c *framework.Cluster) {
	if c.Impl.Name == "upstream" {
		t.Skip("ours only: the outage alone costs E2E_OUTAGE (default 5m) per run")
	}
	outage := outageLength()
	ctx := context.Background()
	ns := c.Namespace(t)
	node1, node2 := c.Node(1), c.Node(2)
	b2 := c.AddPod(t, 2, "out-b2", 8080)
	b3 := c.AddPod(t, 3, "out-b3", 8080)
	client := c.AddPod(t, 1, "out-client", 9999)
	ports := []framework.ServicePort{{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 80, Target: 8080}}
	echo := c.CreateService(t, ns, "echo", ports, []*framework.Pod{b2, b3}, nil)
	gone := c.CreateService(t, ns, "gone", ports, []*framework.Pod{b2}, nil)
	addr := net.JoinHostPort(echo.Spec.ClusterIP, "80")
	c.Eventually(t, "node1 programs echo (2 endpoints) and gone", func() error {
		if err := virtualServerMismatch(c, node1, echo.Spec.ClusterIP, 80, "tcp", ep(b2.IP, 8080), ep(b3.IP, 8080)); err != nil {
			return err
		}
		return virtualServerMismatch(c, node1, gone.Spec.ClusterIP, 80, "tcp", ep(b2.IP, 8080))
	})
	c.EventuallyEcho(t, client.NS, "tcp", addr, expectFrom("", client.IP.String()))
	conn, err := framework.OpenStream(client.NS, addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	used, other := b2, b3
	if conn.Reply.Pod == b3.Name {
		used, other = b3, b2
	}
	t.Logf("connection through %s answered by %s; %s's endpoint will be removed during the outage", addr, used.Name, other.Name)

	// Before: what node1 holds for the live Services (earlier scenarios' deleted Services may
	// still be draining: their state is left out of every comparison).
	live := liveAddresses(t, c)
	before := c.StableIPVS(t, node1)
	live.prune(before)
	beforeDump := stableDump(t, c, node1, c.Cfg.Timeout)
	beforeDump.pruneLive(live)

	apiAddr, err := framework.APIServerHostPort(c.Cfg.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	restore, err := framework.CutOff(node1, apiAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = restore() })
	outStart := time.Now()
	c.ProxyOn(1).Note("FaultAPIServerOutage: node1 cut off from the apiserver %s for %v", apiAddr, outage)
	if cn, err := node1.Dial("tcp", apiAddr, 3*time.Second); err == nil {
		cn.Close()
		t.Fatalf("node1 still connects to the apiserver at %s after the cut", apiAddr)
	}
	t.Logf("node1 cut off from the apiserver at %s for %v", apiAddr, outage)

	// The changes, made while node1 cannot see them.
	c.SetEndpoints(t, echo, []*framework.Pod{used})
	if err := c.Client.CoreV1().Services(ns).Delete(ctx, gone.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Client.DiscoveryV1().EndpointSlices(ns).Delete(ctx, gone.Name+"-e2e", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	fresh := c.CreateService(t, ns, "fresh", ports, []*framework.Pod{used}, nil)
	t.Logf("during the outage: echo -> [%s], gone (%s) deleted, fresh (%s) created", used.Name, gone.Spec.ClusterIP, fresh.Spec.ClusterIP)
	c.Eventually(t, "node2 (not cut off) applies the three changes", func() error {
		if err := virtualServerMismatch(c, node2, echo.Spec.ClusterIP, 80, "tcp", ep(used.IP, 8080)); err != nil {
			return err
		}
		if _, err := c.IPVSRealServers(node2, gone.Spec.ClusterIP, 80, "tcp"); err == nil {
			return fmt.Errorf("node2 still has gone's virtual server")
		}
		return virtualServerMismatch(c, node2, fresh.Spec.ClusterIP, 80, "tcp", ep(used.IP, 8080))
	})

	checks := 0
	for {
		st, err := framework.ReadIPVS(node1)
		if err != nil {
			t.Fatalf("%v into the outage: %v", time.Since(outStart).Round(time.Second), err)
		}
		live.prune(st)
		d := before.Diff(st)
		if len(d) == 0 {
			dump, err := dumpKernel(node1)
			if err != nil {
				t.Fatal(err)
			}
			dump.pruneLive(live)
			d = beforeDump.diff(dump)
		}
		if len(d) > 0 {
			c.DumpState(t)
			t.Fatalf("%v into the outage, node1's kernel changed:\n%s", time.Since(outStart).Round(time.Second), strings.Join(d, "\n"))
		}
		if err := conn.Ping(fmt.Sprintf("outage-%d", checks)); err != nil {
			t.Fatalf("%v into the outage: %v", time.Since(outStart).Round(time.Second), err)
		}
		if c.ProxyOn(1).Exited() {
			t.Fatalf("node1's kube-proxy exited during the outage; log %s", c.ProxyOn(1).LogPath)
		}
		checks++
		left := outage - time.Since(outStart)
		if left <= 0 {
			break
		}
		time.Sleep(min(left, 15*time.Second))
	}
	t.Logf("outage of %v: %d read-backs of node1 identical to before it (%d virtual servers, %d kube-ipvs0 addresses), connection echoing, kube-proxy running",
		time.Since(outStart).Round(time.Second), checks, len(before.Services), len(before.DummyAddrs))

	if err := restore(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	c.ProxyOn(1).Note("FaultAPIServerOutage: path to the apiserver restored")
	c.Eventually(t, "node1 applies the three changes after the apiserver is back", func() error {
		if err := virtualServerMismatch(c, node1, echo.Spec.ClusterIP, 80, "tcp", ep(used.IP, 8080)); err != nil {
			return err
		}
		if _, err := c.IPVSRealServers(node1, gone.Spec.ClusterIP, 80, "tcp"); err == nil {
			return fmt.Errorf("node1 still has gone's virtual server")
		}
		if has, err := node1.HasKubeIPVS0Addr(gone.Spec.ClusterIP); err != nil || has {
			return fmt.Errorf("node1 kube-ipvs0 still holds gone's %s (%v)", gone.Spec.ClusterIP, err)
		}
		if err := virtualServerMismatch(c, node1, fresh.Spec.ClusterIP, 80, "tcp", ep(used.IP, 8080)); err != nil {
			return err
		}
		if has, err := node1.HasKubeIPVS0Addr(fresh.Spec.ClusterIP); err != nil || !has {
			return fmt.Errorf("node1 kube-ipvs0 does not hold fresh's %s yet (%v)", fresh.Spec.ClusterIP, err)
		}
		return nil
	})
	t.Logf("node1 applied the changes %v after the apiserver came back", time.Since(back).Round(100*time.Millisecond))
	c.EventuallyEcho(t, client.NS, "tcp", net.JoinHostPort(fresh.Spec.ClusterIP, "80"), expectFrom(used.Name, client.IP.String()))
	if err := conn.Ping("after-outage"); err != nil {
		t.Fatalf("after the outage: %v", err)
	}
}

// liveSet is the addresses and node ports of the Services that exist at one moment.
type liveSet struct{ ips, nodePorts map[string]bool }

func liveAddresses(t *testing.T, c *framework.Cluster) liveSet {
	t.Helper()
	svcs, err := c.Client.CoreV1().Services("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l := liveSet{ips: map[string]bool{}, nodePorts: map[string]bool{}}
	for _, s := range svcs.Items {
		for _, ip := range append(append([]string{}, s.Spec.ClusterIPs...), s.Spec.ExternalIPs...) {
			l.ips[ip] = true
		}
		for _, in := range s.Status.LoadBalancer.Ingress {
			l.ips[in.IP] = true
		}
		for _, p := range s.Spec.Ports {
			if p.NodePort != 0 {
				l.nodePorts[fmt.Sprint(p.NodePort)] = true
			}
		}
	}
	return l
}

// prune removes from st the virtual servers and kube-ipvs0 addresses of no Service of l.
func (l liveSet) prune(st *framework.IPVSState) {
	for k := range st.Services {
		_, hp, _ := strings.Cut(k, " ")
		ip, port, err := net.SplitHostPort(hp)
		if err == nil && !l.ips[ip] && !l.nodePorts[port] {
			delete(st.Services, k)
		}
	}
	var keep []string
	for _, a := range st.DummyAddrs {
		if l.ips[a] {
			keep = append(keep, a)
		}
	}
	st.DummyAddrs = keep
}
