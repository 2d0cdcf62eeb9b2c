package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	libipvs "github.com/moby/ipvs"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/framework"
	corev1 "k8s.io/api/core/v1"
)

func init() {
	register("TamperingRepaired", testTamperingRepaired)
	register("TamperingDuringSync", testTamperingDuringSync)
}

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

// TamperingDuringSync: the same kinds of tampering as TamperingRepaired, all at once and in the
// middle of a sync. With an established TCP connection from a pod on node1 through a ClusterIP
// and node1's kernel dumped (every virtual server, kube-ipvs0 address, KUBE-* ipset entry and
// iptables rule), E2E_TAMPER_SERVICES (default 300) Services are created at once; as soon as
// node1's kernel, read back, holds part of them (its sync is under way), every virtual server
// but the connection's is deleted, then one shell in node1 runs `ip link del kube-ipvs0; ipset
// flush KUBE-CLUSTER-IP; iptables -t nat -F KUBE-SERVICES`. (Not `ipvsadm -C`: it deletes the
// kernel's IPVS connection entries too, read back with `ipvsadm -Lnc`, so no connection through
// a flushed table survives it whatever kube-proxy does; TamperingRepaired covers `ipvsadm -C`.)
// Within a sync period and slack node1 must hold exactly the dump from before
// plus the new Services (their virtual servers with their real servers, their cluster IPs bound,
// their KUBE-CLUSTER-IP and KUBE-IPVS-IPS entries) and nothing else, the Service must work again
// (ClusterIP from the pod, NodePort from the client) and the connection, idle meanwhile (no
// keepalive at either end), must still echo. Ours only: upstream's
// sync of 300 more Services takes long enough here that E2E_UPSTREAM=all could not afford it.
func testTamperingDuringSync(t *testing.T, c *framework.Cluster) {
	if c.Impl.Name == "upstream" {
		t.Skip("ours only: upstream's syncs of hundreds of Services are too slow in the lab guest")
	}
	n := envInt("E2E_TAMPER_SERVICES", 300)
	ns := c.Namespace(t)
	node1 := c.Node(1)
	backend := c.AddPod(t, 2, "tds-a", 8080)
	client := c.AddPod(t, 1, "tds-client", 9999)
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
	// Idle, keepalive off at both ends: a packet that arrived while its virtual server is gone
	// would expire the connection (net.ipv4.vs.expire_nodest_conn=1, set by kube-proxy as
	// upstream does); idle, it resumes if the same real server is back (OpenIdleStream).
	conn, err := framework.OpenIdleStream(client.NS, cip, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	budget := 5 * time.Minute
	before := stableDump(t, c, node1, budget)
	// Pruned by the Services live now: a cluster IP an earlier scenario freed, whose virtual
	// server still drains, can be given to one of the burst's Services (CI saw it once).
	before.pruneLive(liveAddresses(t, c))

	var partial string
	var burst []bulkService
	for attempt := 1; attempt <= 3 && partial == ""; attempt++ {
		bs := createBulk(t, c, ns, fmt.Sprintf("burst%d", attempt), n)
		burst = append(burst, bs...)
		partial = tamperMidSync(t, node1, bs, svc.Spec.ClusterIP)
		if partial == "" {
			t.Logf("attempt %d: node1 had programmed all %d Services before a partial state was read back; again", attempt, n)
		}
	}
	if partial == "" {
		t.Fatalf("3 attempts: never read back node1 in the middle of a sync")
	}
	t.Logf("tampered with node1 in the middle of a sync, %s", partial)
	live := liveAddresses(t, c) // the new Services included

	slow, err := c.ProxyOn(1).MaxSyncDuration()
	if err != nil {
		t.Fatal(err)
	}
	deadline := 30*time.Second + 10*time.Second + 2*slow
	start := time.Now()
	waitBulk(t, c, []*framework.Node{node1}, burst, nil, deadline)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	var after *kernelDump
	var last []string
	for ctx.Err() == nil {
		after, err = dumpKernel(node1)
		if err != nil {
			t.Fatal(err)
		}
		after.pruneLive(live)
		if last = tamperResidue(before, after, burst); len(last) == 0 {
			break
		}
		time.Sleep(time.Second)
	}
	if len(last) > 0 {
		c.DumpState(t)
		t.Fatalf("%v after the tampering node1 is not the dump from before plus the new Services:\n%s", deadline, strings.Join(last, "\n"))
	}
	if err := works(); err != nil {
		t.Fatalf("after the repair: %v", err)
	}
	if err := conn.Ping("after-tampering"); err != nil {
		t.Fatalf("after the repair: %v", err)
	}
	t.Logf("repaired within %v (budget %v: sync period 30s at most + 10s + twice the slowest sync %v): %d virtual servers, %d addresses, %d ipset lines, %d rules",
		time.Since(start).Round(100*time.Millisecond), deadline, slow, len(after.IPVS), len(after.Addrs), len(after.Sets), len(after.Rules))
	deleteBulk(t, c, ns, burst, true)
	waitBulk(t, c, c.Net.Nodes, nil, burst, budget)
}

// tamperMidSync polls node's IPVS table while kube-proxy programs bulk and, once some but not all
// of their virtual servers are there, tampers with everything at once: every virtual server but
// keep's deleted, kube-ipvs0 deleted, KUBE-CLUSTER-IP flushed, KUBE-SERVICES flushed. It returns
// what it read ("" when kube-proxy had programmed them all first).
func tamperMidSync(t *testing.T, node *framework.Node, bulk []bulkService, keep string) string {
	t.Helper()
	want := map[string]bool{}
	for _, b := range bulk {
		want[b.ClusterIP] = true
	}
	h, err := libipvs.New(node.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	start := time.Now()
	for time.Since(start) < 5*time.Minute {
		svcs, err := h.GetServices()
		if err != nil {
			t.Fatal(err)
		}
		vs := 0
		for _, s := range svcs {
			if s.Port == 80 && want[s.Address.String()] {
				vs++
			}
		}
		if vs == len(want) {
			return ""
		}
		if vs > 0 {
			read := time.Since(start)
			deleted := 0
			for _, s := range svcs {
				if s.Address.String() == keep {
					continue
				}
				switch err := h.DelService(s); {
				case errors.Is(err, syscall.ESRCH): // kube-proxy deleted it meanwhile
				case err != nil:
					t.Fatalf("deleting virtual server %s:%d: %v", s.Address, s.Port, err)
				default:
					deleted++
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, err := node.Run(ctx, "sh", "-c",
				"ip link del kube-ipvs0 && ipset flush KUBE-CLUSTER-IP && iptables -w -t nat -F KUBE-SERVICES")
			if err != nil {
				t.Fatalf("tampering: %v\n%s", err, out)
			}
			return fmt.Sprintf("%d of %d new virtual servers read back %v after their creation; %d virtual servers deleted",
				vs, len(want), read.Round(time.Millisecond), deleted)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("node1 programmed none of %d Services in 5 minutes", len(want))
	return ""
}

// tamperResidue compares after with before plus bulk: bulk's virtual servers, cluster IPs and
// KUBE-CLUSTER-IP entries must be in after (bulkMismatch checks their real servers); without
// them after must equal before.
func tamperResidue(before, after *kernelDump, bulk []bulkService) []string {
	ips := map[string]bool{}
	for _, b := range bulk {
		ips[b.ClusterIP] = true
	}
	rest := &kernelDump{Rules: after.Rules}
	var out []string
	seenVS := 0
	for _, l := range after.IPVS {
		f := strings.Fields(l)
		if ip, _, err := net.SplitHostPort(f[1]); err == nil && ips[ip] {
			seenVS++
			continue
		}
		rest.IPVS = append(rest.IPVS, l)
	}
	for _, a := range after.Addrs {
		if !ips[a] {
			rest.Addrs = append(rest.Addrs, a)
		}
	}
	entries := map[string]int{} // set -> entries of the new Services' cluster IPs
	for _, l := range after.Sets {
		if set, e, ok := strings.Cut(l, " "); ok {
			if ip, _, _ := strings.Cut(e, ","); ips[ip] {
				entries[set]++
				continue
			}
		}
		rest.Sets = append(rest.Sets, l)
	}
	if seenVS != len(bulk) || len(after.Addrs)-len(rest.Addrs) != len(bulk) || len(entries) != 2 ||
		entries["KUBE-CLUSTER-IP"] != len(bulk) || entries["KUBE-IPVS-IPS"] != len(bulk) {
		out = append(out, fmt.Sprintf("new Services: %d virtual servers, %d kube-ipvs0 addresses, ipset entries %v; want %d virtual servers, addresses, KUBE-CLUSTER-IP and KUBE-IPVS-IPS entries",
			seenVS, len(after.Addrs)-len(rest.Addrs), entries, len(bulk)))
	}
	return append(out, before.diff(rest)...)
}
