package e2e

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/framework"
	corev1 "k8s.io/api/core/v1"
)

func init() { register("TamperingRepaired", testTamperingRepaired) }

const tamperSyncPeriod = 10 * time.Second

// Tampering with node1's kernel state is repaired by kube-proxy's periodic sync: node1's
// kube-proxy is restarted with --ipvs-sync-period=10s (and keeps it for the rest of the run),
// then, one at a time: `ipvsadm -C` (every virtual server gone), `ip link del kube-ipvs0`,
// `iptables -t nat -F KUBE-SERVICES` (NodePort traffic no longer masqueraded),
// `ipset flush KUBE-NODE-PORT-TCP` (NodePort traffic no longer masqueraded) and `ipset destroy`
// of a set no iptables rule references. After each the Service works again (ClusterIP from a pod
// on node1, NodePort on node1 from the client, masqueraded) within syncPeriod + slack (10 s + twice the slowest sync so far),
// and the destroyed set is back. Upstream repairs all of these on its periodic sync: parity.
func testTamperingRepaired(t *testing.T, c *framework.Cluster) {
	ns := c.Namespace(t)
	backend := c.AddPod(t, 2, "tmp-a", 8080)
	client := c.AddPod(t, 1, "tmp-client", 9999)
	node1 := c.Node(1)
	c.ReplaceProxy(t, 1, c.ProxyOn(1).Impl, fmt.Sprintf("--ipvs-sync-period=%s", tamperSyncPeriod))
	svc := c.CreateService(t, ns, "echo", []framework.ServicePort{
		{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 80, Target: 8080},
	}, []*framework.Pod{backend}, func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort })
	cip := net.JoinHostPort(svc.Spec.ClusterIP, "80")
	np := net.JoinHostPort(node1.IP.String(), fmt.Sprint(svc.Spec.Ports[0].NodePort))
	works := func() error {
		r, err := framework.Echo(client.NS, "tcp", cip, 2*time.Second)
		if err == nil {
			err = expectFrom(backend.Name, client.IP.String())(r)
		}
		if err != nil {
			return fmt.Errorf("ClusterIP %s from pod: %w", cip, err)
		}
		r, err = framework.Echo(c.Net.Client, "tcp", np, 2*time.Second)
		if err == nil {
			err = expectFromNode(backend.Name, node1)(r)
		}
		if err != nil {
			return fmt.Errorf("NodePort %s from client: %w", np, err)
		}
		return nil
	}
	c.Eventually(t, "service works before tampering", works)
	run := func(args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := node1.Run(ctx, args[0], args[1:]...)
		if err != nil {
			t.Fatalf("%v", err)
		}
		return out
	}
	sets := strings.Fields(run("ipset", "list", "-n"))
	rules := run("iptables-save")
	unreferenced := ""
	for _, s := range sets {
		if !strings.Contains(rules, " "+s+" ") {
			unreferenced = s
			break
		}
	}
	t.Logf("ipsets on node1: %v; first not referenced by any iptables rule: %q", sets, unreferenced)

	// Slack: 10 s plus twice the slowest sync node1's kube-proxy has done (under TCG emulation on a
	// shared machine one sync can take seconds).
	slow, err := c.ProxyOn(1).MaxSyncDuration()
	if err != nil {
		t.Fatal(err)
	}
	deadline := tamperSyncPeriod + 10*time.Second + 2*slow
	t.Logf("slowest sync so far %v: repairs must complete within %v", slow, deadline)
	repaired := func(what string, extra func() error) {
		t.Helper()
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		var last error
		for ctx.Err() == nil {
			if last = works(); last == nil && extra != nil {
				last = extra()
			}
			if last == nil {
				t.Logf("%s: repaired after %v", what, time.Since(start).Round(100*time.Millisecond))
				return
			}
			time.Sleep(250 * time.Millisecond)
		}
		c.DumpState(t)
		t.Fatalf("%s: not repaired within syncPeriod %v + slack (%v): %v", what, tamperSyncPeriod, deadline, last)
	}

	run("ipvsadm", "-C")
	if st, err := framework.ReadIPVS(node1); err != nil || len(st.Services) != 0 {
		t.Fatalf("after ipvsadm -C: %v services, %v", st, err)
	}
	repaired("ipvsadm -C", nil)

	run("ip", "link", "del", "kube-ipvs0")
	repaired("ip link del kube-ipvs0", func() error {
		addrs, _, err := node1.AddrsOf("kube-ipvs0")
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if a == svc.Spec.ClusterIP {
				return nil
			}
		}
		return fmt.Errorf("kube-ipvs0 holds %v, not %s", addrs, svc.Spec.ClusterIP)
	})

	// Our rules: without KUBE-SERVICES' jump to KUBE-NODE-PORT, NodePort traffic is no longer
	// marked for masquerade and the backend on node2 answers the client directly. On nf_tables
	// the flush advances the ruleset generation, which is how ours knows to read the rules again.
	run("iptables", "-w", "-t", "nat", "-F", "KUBE-SERVICES")
	kubeServicesRules := func() error {
		if n := strings.Count(run("iptables-save", "-t", "nat"), "\n-A KUBE-SERVICES "); n == 0 {
			return fmt.Errorf("KUBE-SERVICES is empty")
		}
		return nil
	}
	if kubeServicesRules() == nil {
		t.Fatalf("iptables -t nat -F KUBE-SERVICES left rules in the chain; the step is void")
	}
	repaired("iptables -t nat -F KUBE-SERVICES", kubeServicesRules)

	run("ipset", "flush", "KUBE-NODE-PORT-TCP")
	repaired("ipset flush KUBE-NODE-PORT-TCP", nil)

	if unreferenced == "" {
		t.Logf("every ipset is referenced by a rule: no set to destroy")
		return
	}
	run("ipset", "destroy", unreferenced)
	repaired("ipset destroy "+unreferenced, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := node1.Run(ctx, "ipset", "list", "-n")
		if err != nil {
			return err
		}
		for _, s := range strings.Fields(out) {
			if s == unreferenced {
				return nil
			}
		}
		return fmt.Errorf("ipset %s not re-created (sets: %s)", unreferenced, strings.Join(strings.Fields(out), " "))
	})
}
