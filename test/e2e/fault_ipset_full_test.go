package e2e

// Fault: an ipset full. Filling KUBE-CLUSTER-IP up to its maxelem of 65536 with stray entries
// takes over a minute of `ipset restore` under emulation, and kube-proxy's periodic sync, which
// owns the set, deletes the strays meanwhile; so the set is made full another way: a set of the
// same type holding exactly KUBE-CLUSTER-IP's entries, with maxelem equal to their number, is
// swapped in (`ipset swap`, atomic, allowed while iptables rules use the set) and the old one
// destroyed. The entries are the same, so kube-proxy sees nothing to repair; the set is full, as
// one adopted from an older installation with a smaller maxelem would be.
//
// With an established TCP connection through Service "a", Service "b" (NodePort) is created.
// Read back on node1: b's KUBE-CLUSTER-IP entry is absent (the kernel refused it: "Hash is
// full"), and the rest of the same ipset batch and of the sync is there: b's NodePort entry in
// KUBE-NODE-PORT-TCP, b's virtual servers with the backend, b's cluster IP on kube-ipvs0; the
// refusal is in kube-proxy's log and in kubeproxy_ipvs_ipset_entries_refused; b's NodePort
// answers from the client (masqueraded by node1), the connection through a still echoes, and a
// Service "c" created afterwards is programmed too. (Before the fix, the refused line failed the
// one `ipset restore` of every sync: nothing after it was written.) Then the set is swapped
// back to one with maxelem 65536 and the same entries: within a sync period and slack the
// periodic sync writes b's and c's entries and the gauge is back to 0.
//
// Ours only: upstream adds each entry with its own `ipset add` process and logs a refused one,
// which the refusal cannot spread from; nothing to show.

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/framework"
	corev1 "k8s.io/api/core/v1"
)

func init() { register("FaultIPSetFull", testFaultIPSetFull) }

const fullSet = "KUBE-CLUSTER-IP"

// setHeader reads a set's maxelem and number of entries (`ipset list -t`).
func setHeader(node *framework.Node, set string) (maxelem, entries int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := node.Run(ctx, "ipset", "list", "-t", set)
	if err != nil {
		return 0, 0, err
	}
	maxelem, entries = -1, -1
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "Number of entries: "); ok {
			entries, _ = strconv.Atoi(strings.TrimSpace(v))
		}
		if strings.HasPrefix(l, "Header: ") {
			f := strings.Fields(l)
			for i := range f[:len(f)-1] {
				if f[i] == "maxelem" {
					maxelem, _ = strconv.Atoi(f[i+1])
				}
			}
		}
	}
	if maxelem < 0 || entries < 0 {
		return 0, 0, fmt.Errorf("ipset list -t %s on %s: no maxelem or count in:\n%s", set, node.Name, out)
	}
	return maxelem, entries, nil
}

// resizeSet replaces set on node by one of the same type with the same entries and maxelem
// (ipset swap, then destroy of the old one); it returns the number of entries.
func resizeSet(t *testing.T, node *framework.Node, set, typ string, maxelem int) int {
	t.Helper()
	entries, err := ipsetEntries(node, set)
	if err != nil {
		t.Fatal(err)
	}
	if maxelem < len(entries) {
		maxelem = len(entries)
	}
	tmp := set + "-E2E"
	var b strings.Builder
	fmt.Fprintf(&b, "create %s %s family inet hashsize 64 maxelem %d\n", tmp, typ, maxelem)
	for _, e := range entries {
		fmt.Fprintf(&b, "add %s %s\n", tmp, e)
	}
	path := filepath.Join(t.TempDir(), "resize.ipset")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, args := range [][]string{{"-file", path, "restore"}, {"swap", set, tmp}, {"destroy", tmp}} {
		if out, err := node.Run(ctx, "ipset", args...); err != nil {
			t.Fatalf("ipset %v: %v\n%s", args, err, out)
		}
	}
	return len(entries)
}

func testFaultIPSetFull(t *testing.T, c *framework.Cluster) {
	if c.Impl.Name == "upstream" {
		t.Skip("ours only: upstream writes every ipset entry with its own process; a refused one cannot fail the others")
	}
	ns := c.Namespace(t)
	node1 := c.Node(1)
	backend := c.AddPod(t, 2, "full-a", 8080)
	client := c.AddPod(t, 1, "full-client", 9999)
	ports := []framework.ServicePort{{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 80, Target: 8080}}
	a := c.CreateService(t, ns, "a", ports, []*framework.Pod{backend}, nil)
	aAddr := net.JoinHostPort(a.Spec.ClusterIP, "80")
	c.EventuallyEcho(t, client.NS, "tcp", aAddr, expectFrom(backend.Name, client.IP.String()))
	conn, err := framework.OpenStream(client.NS, aAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c.Eventually(t, "node1 "+fullSet+" holds a's entry", func() error {
		if has, err := hasIPSetEntry(node1, fullSet, a.Spec.ClusterIP+",tcp:80"); err != nil || !has {
			return fmt.Errorf("present=%v (%v)", has, err)
		}
		return nil
	})
	origMax, _, err := setHeader(node1, fullSet)
	if err != nil {
		t.Fatal(err)
	}
	n := resizeSet(t, node1, fullSet, "hash:ip,port", 0)
	restored := false
	t.Cleanup(func() {
		if !restored {
			resizeSet(t, node1, fullSet, "hash:ip,port", origMax)
		}
	})
	if maxelem, m, err := setHeader(node1, fullSet); err != nil || maxelem != n || m != n {
		t.Fatalf("node1 %s after the swap: maxelem %d, %d entries (%v); want both %d", fullSet, maxelem, m, err, n)
	}
	t.Logf("node1 %s swapped for a set with the same %d entries and maxelem %d: full", fullSet, n, n)

	b := c.CreateService(t, ns, "b", ports, []*framework.Pod{backend}, func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeNodePort
	})
	bEntry := b.Spec.ClusterIP + ",tcp:80"
	np := b.Spec.Ports[0].NodePort
	c.Eventually(t, "node1 refuses "+bEntry+" and writes the rest (kubeproxy_ipvs_ipset_entries_refused, KUBE-NODE-PORT-TCP, virtual servers, binding)", func() error {
		v, _, err := nodeMetric(node1, "kubeproxy_ipvs_ipset_entries_refused", map[string]string{"ip_family": "IPv4"})
		if err != nil || v < 1 {
			return fmt.Errorf("kubeproxy_ipvs_ipset_entries_refused{ip_family=\"IPv4\"} = %v (%v)", v, err)
		}
		if has, err := hasIPSetEntry(node1, "KUBE-NODE-PORT-TCP", fmt.Sprint(np)); err != nil || !has {
			return fmt.Errorf("KUBE-NODE-PORT-TCP: %d present=%v (%v)", np, has, err)
		}
		if err := virtualServerMismatch(c, node1, b.Spec.ClusterIP, 80, "tcp", ep(backend.IP, 8080)); err != nil {
			return err
		}
		if err := virtualServerMismatch(c, node1, node1.IP.String(), uint16(np), "tcp", ep(backend.IP, 8080)); err != nil {
			return err
		}
		if has, err := node1.HasKubeIPVS0Addr(b.Spec.ClusterIP); err != nil || !has {
			return fmt.Errorf("%s on kube-ipvs0: %v (%v)", b.Spec.ClusterIP, has, err)
		}
		return nil
	})
	if has, err := hasIPSetEntry(node1, fullSet, bEntry); err != nil || has {
		t.Fatalf("node1 %s (full): %s present=%v (%v), want refused", fullSet, bEntry, has, err)
	}
	logLine := ""
	for _, l := range strings.Split(logTail(c.ProxyOn(1).LogPath), "\n") {
		if strings.Contains(l, "refused an ipset entry") && strings.Contains(l, bEntry) {
			logLine = l
		}
	}
	if logLine == "" {
		t.Fatalf("node1's kube-proxy log has no line on the refused entry %s (%s)", bEntry, c.ProxyOn(1).LogPath)
	}
	t.Logf("log: %s", strings.TrimSpace(logLine))
	c.EventuallyEcho(t, c.Net.Client, "tcp", net.JoinHostPort(node1.IP.String(), fmt.Sprint(np)), expectFromNode(backend.Name, node1))
	if err := conn.Ping("set-full"); err != nil {
		t.Fatalf("with %s full: %v", fullSet, err)
	}

	// Later syncs go on: a Service created now is programmed (its entry is refused too).
	cs := c.CreateService(t, ns, "c", ports, []*framework.Pod{backend}, nil)
	c.Eventually(t, "node1 programs c with the set still full", func() error {
		if err := virtualServerMismatch(c, node1, cs.Spec.ClusterIP, 80, "tcp", ep(backend.IP, 8080)); err != nil {
			return err
		}
		if has, err := node1.HasKubeIPVS0Addr(cs.Spec.ClusterIP); err != nil || !has {
			return fmt.Errorf("%s on kube-ipvs0: %v (%v)", cs.Spec.ClusterIP, has, err)
		}
		return nil
	})
	if maxelem, m, err := setHeader(node1, fullSet); err != nil || m != maxelem {
		t.Fatalf("node1 %s: %d entries of %d (%v), want it still full for the read-backs above", fullSet, m, maxelem, err)
	}
	t.Logf("with %s full: %s refused and logged; %s's NodePort entry, virtual servers and binding written; NodePort answers; connection echoes; c programmed",
		fullSet, bEntry, b.Name)

	// The set gets room again (swapped back to maxelem 65536, the same entries): the periodic
	// sync, which re-reads the sets, writes the refused entries, and the gauge goes back to 0.
	resizeSet(t, node1, fullSet, "hash:ip,port", origMax)
	restored = true
	slow, err := c.ProxyOn(1).MaxSyncDuration()
	if err != nil {
		t.Fatal(err)
	}
	budget := 30*time.Second + 10*time.Second + 2*slow
	start := time.Now()
	deadline := start.Add(budget)
	for {
		var missing []string
		for _, e := range []string{bEntry, cs.Spec.ClusterIP + ",tcp:80"} {
			if has, err := hasIPSetEntry(node1, fullSet, e); err != nil || !has {
				missing = append(missing, e)
			}
		}
		v, _, err := nodeMetric(node1, "kubeproxy_ipvs_ipset_entries_refused", map[string]string{"ip_family": "IPv4"})
		if len(missing) == 0 && err == nil && v == 0 {
			break
		}
		if time.Now().After(deadline) {
			c.DumpState(t)
			t.Fatalf("%v after %s got room: entries %v still missing, kubeproxy_ipvs_ipset_entries_refused = %v (%v)", budget, fullSet, missing, v, err)
		}
		time.Sleep(time.Second)
	}
	t.Logf("%s with room again: the refused entries written and the gauge back to 0 after %v (budget: sync period 30s + 10s + twice the slowest sync %v)",
		fullSet, time.Since(start).Round(100*time.Millisecond), slow)
}

// logTail returns the file's last 1 MiB.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > 1<<20 {
		b = b[len(b)-1<<20:]
	}
	return string(b)
}
