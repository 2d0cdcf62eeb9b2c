package e2e

// Fault: kube-proxy SIGKILLed in the middle of a large first sync.
//
// An established TCP connection from a pod on node1 through Service "echo". node1's kube-proxy
// is stopped (SIGTERM); E2E_FAULT_SERVICES (default 1000) Services of two real servers each are
// created (node2 and node3 program them); a kube-proxy starts on node1, and its first sync has
// them all to program. It is SIGKILLed as soon as node1's kernel, read back, holds part of them
// (some virtual servers, or all and not all their cluster IPs bound). While none runs, 20 of the
// Services it had programmed are deleted and 10 are created. A kube-proxy starts again: node1
// must hold every live Service's virtual server with its real servers and bound cluster IP,
// nothing of the deleted ones, and the connection must still echo (its virtual server was never
// touched). Then the reference: node1 is wiped (kube-proxy --cleanup, read back empty) and a
// kube-proxy starts clean; the two dumps (every virtual server with its real servers and
// weights, kube-ipvs0's addresses, every KUBE-* ipset entry, every iptables rule, duplicates
// counted; state of Services deleted by earlier scenarios left out) must be identical.
//
// Ours only: upstream's first sync of 1000 Services takes about a minute in this guest
// (docs/performance.md), which E2E_UPSTREAM=all would pay twice over.

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	libipvs "github.com/moby/ipvs"
	"github.com/vishvananda/netlink"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/framework"
	corev1 "k8s.io/api/core/v1"
)

func init() { register("FaultKilledFirstSync", testFaultKilledFirstSync) }

func testFaultKilledFirstSync(t *testing.T, c *framework.Cluster) {
	if c.Impl.Name == "upstream" {
		t.Skip("ours only: upstream's first sync of 1000 Services takes about a minute in the lab guest")
	}
	n := envInt("E2E_FAULT_SERVICES", 1000)
	ns := c.Namespace(t)
	node1 := c.Node(1)
	backend := c.AddPod(t, 2, "kfs-a", 8080)
	client := c.AddPod(t, 1, "kfs-client", 9999)
	echo := c.CreateService(t, ns, "echo", []framework.ServicePort{
		{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 80, Target: 8080},
	}, []*framework.Pod{backend}, nil)
	addr := net.JoinHostPort(echo.Spec.ClusterIP, "80")
	c.EventuallyEcho(t, client.NS, "tcp", addr, expectFrom(backend.Name, client.IP.String()))
	conn, err := framework.OpenStream(client.NS, addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	impl := c.ProxyOn(1).Impl
	// Whatever happens, node1 has a kube-proxy again for the next scenario.
	t.Cleanup(func() {
		if c.ProxyOn(1).Exited() {
			c.StartProxyOn(t, 1, impl)
		}
	})
	c.ProxyOn(1).Stop()
	bulk := createBulk(t, c, ns, "bulk", n)
	budget := 5 * time.Minute
	waitBulk(t, c, c.Net.Nodes[1:], bulk, nil, budget)

	// 1. SIGKILL in the middle of the first sync.
	var partial string
	for attempt := 1; attempt <= 3 && partial == ""; attempt++ {
		if attempt > 1 {
			dropBulk(t, node1, bulk)
		}
		p, err := framework.StartProxy(impl, node1, c.Cfg.Kubeconfig, c.LogDir)
		if err != nil {
			t.Fatal(err)
		}
		c.Proxies[0] = p
		p.Note("FaultKilledFirstSync: attempt %d; SIGKILL when the kernel holds part of %d Services", attempt, n)
		partial = killMidSync(t, p, node1, bulk)
		if partial == "" {
			t.Logf("attempt %d: the first sync completed before a partial state was read back; again", attempt)
			p.Stop()
		}
	}
	if partial == "" {
		t.Fatalf("3 attempts: never read back a partial first sync of %d Services", n)
	}
	t.Logf("SIGKILLed node1's kube-proxy with %s", partial)

	// While none runs: delete 20 Services the killed one had programmed, create 10.
	st, err := framework.ReadIPVS(node1)
	if err != nil {
		t.Fatal(err)
	}
	var gone, kept []bulkService
	for _, b := range bulk {
		if _, ok := st.Services["TCP "+net.JoinHostPort(b.ClusterIP, "80")]; ok && len(gone) < 20 {
			gone = append(gone, b)
		} else {
			kept = append(kept, b)
		}
	}
	deleteBulk(t, c, ns, gone, false)
	late := createBulk(t, c, ns, "late", 10)
	present := append(append([]bulkService(nil), kept...), late...)
	t.Logf("while no kube-proxy ran on node1: deleted %d Services it had programmed, created %d", len(gone), len(late))

	c.StartProxyOn(t, 1, impl)
	waitBulk(t, c, []*framework.Node{node1}, present, gone, budget)
	afterKill := stableDump(t, c, node1, budget)
	if err := conn.Ping("after-kill"); err != nil {
		t.Fatalf("after the kill and restart: %v", err)
	}
	t.Logf("after the kill and restart: the connection through %s echoes", addr)

	// 2. The reference: a clean start on a wiped node, the same API objects.
	c.ProxyOn(1).Stop()
	wipeNode(t, node1, impl, c.Cfg.Kubeconfig)
	c.StartProxyOn(t, 1, impl)
	waitBulk(t, c, []*framework.Node{node1}, present, gone, budget)
	clean := stableDump(t, c, node1, budget)
	live := liveAddresses(t, c)
	afterKill.pruneLive(live)
	clean.pruneLive(live)
	if d := afterKill.diff(clean); len(d) > 0 {
		c.DumpState(t)
		t.Fatalf("after the kill and restart, node1 differs from a clean start:\n%s", strings.Join(d, "\n"))
	}
	t.Logf("after the kill and restart node1 held what a clean start does: %d virtual servers, %d kube-ipvs0 addresses, %d ipset lines, %d iptables lines",
		len(clean.IPVS), len(clean.Addrs), len(clean.Sets), len(clean.Rules))

	// Leave the nodes as the next scenario expects them: without the bulk Services.
	deleteBulk(t, c, ns, present, true)
	waitBulk(t, c, c.Net.Nodes, nil, append(present, gone...), budget)
}

// wipeNode removes everything an IPVS proxier owns from node with kube-proxy --cleanup and reads
// it back empty. --cleanup runs the iptables mode's cleanup before the IPVS one (as upstream's
// does): on a node the IPVS proxier programmed the first cannot delete KUBE-MARK-MASQ, which the
// IPVS chains still use, and the command exits 1 after the IPVS cleanup has run; a second run
// finds nothing in the way. What counts is the read-back.
func wipeNode(t *testing.T, node *framework.Node, impl framework.Impl, kubeconfig string) {
	t.Helper()
	args := append(framework.ProxyArgs(node, kubeconfig), "--cleanup")
	for run := 1; ; run++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		out, err := node.Run(ctx, impl.Binary, args...)
		cancel()
		if err == nil {
			break
		}
		if run == 2 {
			t.Fatalf("kube-proxy --cleanup on %s, twice: %v\n%s", node.Name, err, out)
		}
		t.Logf("kube-proxy --cleanup on %s, first run: %s", node.Name, lineWith(out, "command failed"))
	}
	if err := nothingProgrammed(node.NS); err != nil {
		t.Fatalf("after kube-proxy --cleanup: %v", err)
	}
}

// dropBulk removes bulk's virtual servers and kube-ipvs0 addresses from node (whose kube-proxy
// is stopped), so that the next start has them all to program again.
func dropBulk(t *testing.T, node *framework.Node, bulk []bulkService) {
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
	svcs, err := h.GetServices()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range svcs {
		if s.Port == 80 && want[s.Address.String()] {
			if err := h.DelService(s); err != nil {
				t.Fatal(err)
			}
		}
	}
	link, err := node.NL.LinkByName("kube-ipvs0")
	if err != nil {
		t.Fatal(err)
	}
	for ip := range want {
		_ = node.NL.AddrDel(link, &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP(ip), Mask: net.CIDRMask(32, 32)}})
	}
}

// killMidSync polls node's kernel while p runs its first sync and SIGKILLs p as soon as it
// reads back a part of bulk: some but not all of their virtual servers, or all of them and not
// all their cluster IPs bound. It returns what it read ("" if the sync completed first).
func killMidSync(t *testing.T, p *framework.Proxy, node *framework.Node, bulk []bulkService) string {
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
	deadline := start.Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		if p.Exited() {
			t.Fatalf("node1's kube-proxy exited during its first sync; log: %s", p.LogPath)
		}
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
		bound := 0
		if vs > 0 {
			addrs, err := node.KubeIPVS0Addrs()
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range addrs {
				if want[a] {
					bound++
				}
			}
		}
		if (vs > 0 && vs < len(want)) || (vs == len(want) && bound < len(want)) {
			p.Kill()
			return fmt.Sprintf("%d of %d virtual servers and %d of %d cluster IPs bound, %v after its start",
				vs, len(want), bound, len(want), time.Since(start).Round(time.Millisecond))
		}
		if vs == len(want) && bound == len(want) {
			return ""
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("node1's kube-proxy programmed none of %d Services in 5 minutes", len(want))
	return ""
}

// lineWith is the last line of s that contains sub, trimmed ("" if none).
func lineWith(s, sub string) string {
	found := ""
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			found = strings.TrimSpace(l)
		}
	}
	return found
}
