package e2e

// Issue 27 (1): a Service whose externalIP is another Service's cluster IP (CVE-2020-8554).
//
// The victim Service (namespace zz-victim-<impl>, sorting last) has its pod on node2; the thief
// Service (namespace aa-thief-<impl>, sorting first) names the victim's cluster IP as its
// externalIP on the same port, its pod on node3. A client pod on node1 connects to the victim's
// cluster IP.
//
//   - Ours refuses the address (reason cluster-ip): the victim's virtual server, read back from
//     every node's kernel, holds the victim's pod only (no real server of the thief's, not even
//     at weight 0), KUBE-EXTERNAL-IP has no entry for the address, every connection is answered
//     by the victim's pod, a Warning AddressRefused Event names the address on the thief, and
//     kubeproxy_ipvs_refused_addresses{reason="cluster-ip"} counts it on every node.
//     (Before the fix, ours let the lowest Service name win the shared virtual server: the thief,
//     every sync.)
//   - Upstream puts "<cluster IP>,tcp:80" in KUBE-EXTERNAL-IP and, at every sync, writes the real
//     servers of both Services into the one virtual server in the order of a Go map walk: the
//     last one written wins (the other's are set to weight 0 or deleted). The scenario makes
//     syncs happen (a third Service's endpoints change) until it has read back the thief's pod
//     as the weighted real server of the victim's virtual server and a connection to the
//     victim's cluster IP has been answered by the thief's pod.

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/framework"
	corev1 "k8s.io/api/core/v1"
)

func init() { register("ForkClusterIPTakeover", testForkClusterIPTakeover) }

func testForkClusterIPTakeover(t *testing.T, c *framework.Cluster) {
	vns := c.NamespaceNamed(t, "zz-victim-"+c.Impl.Name)
	tns := c.NamespaceNamed(t, "aa-thief-"+c.Impl.Name)
	victimPod := c.AddPod(t, 2, "tko-victim", 8080)
	thiefPod := c.AddPod(t, 3, "tko-thief", 8080)
	client := c.AddPod(t, 1, "tko-client", 9999)
	ports := []framework.ServicePort{{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 80, Target: 8080}}
	victim := c.CreateService(t, vns, "victim", ports, []*framework.Pod{victimPod}, nil)
	vip := victim.Spec.ClusterIP
	addr := net.JoinHostPort(vip, "80")
	if c.Impl.Name != "upstream" { // upstream's syncs take a minute here: its check comes later
		c.EventuallyEcho(t, client.NS, "tcp", addr, expectFrom(victimPod.Name, client.IP.String()))
	}

	thief := c.CreateService(t, tns, "thief", ports, []*framework.Pod{thiefPod}, func(s *corev1.Service) {
		s.Spec.ExternalIPs = []string{vip}
	})
	t.Logf("victim %s/victim cluster IP %s -> %s (node2); thief %s/thief (cluster IP %s) externalIP %s -> %s (node3)",
		vns, vip, victimPod.IP, tns, thief.Spec.ClusterIP, vip, thiefPod.IP)
	// The thief has reached every node's kernel: its own cluster IP's virtual server is there.
	c.Eventually(t, "every node programs the thief's own cluster IP", func() error {
		for _, n := range c.Net.Nodes {
			if err := virtualServerMismatch(c, n, thief.Spec.ClusterIP, 80, "tcp", ep(thiefPod.IP, 8080)); err != nil {
				return err
			}
		}
		return nil
	})
	entry := vip + ",tcp:80"
	victimRS, thiefRS := ep(victimPod.IP, 8080), ep(thiefPod.IP, 8080)

	if c.Impl.Name == "upstream" {
		c.Eventually(t, "KUBE-EXTERNAL-IP holds "+entry+" on every node", func() error {
			for _, n := range c.Net.Nodes {
				if has, err := hasIPSetEntry(n, "KUBE-EXTERNAL-IP", entry); err != nil || !has {
					return fmt.Errorf("%s: entry present=%v (%v)", n.Name, has, err)
				}
			}
			return nil
		})
		takeoverObserved(t, c, tns, addr, client, victimPod, thiefPod, vip)
		return
	}

	// Ours: the victim's virtual server is the victim's alone, on every node, over several syncs
	// (each change of the tick Service's endpoints makes one on every node).
	tick := c.CreateService(t, tns, "tick", ports, nil, nil)
	for round := 0; round < 3; round++ {
		if round > 0 {
			pods := []*framework.Pod{thiefPod}
			if round%2 == 0 {
				pods = nil
			}
			changed := time.Now()
			c.SetEndpoints(t, tick, pods)
			for i := 1; i <= len(c.Net.Nodes); i++ {
				waitSyncAfter(t, c, i, changed)
			}
		}
		for _, n := range c.Net.Nodes {
			all, err := c.IPVSRealServers(n, vip, 80, "tcp")
			if err != nil {
				t.Fatalf("%s: %v", n.Name, err)
			}
			if len(all) != 1 || all[0].Addr != victimRS || all[0].Weight <= 0 {
				c.DumpState(t)
				t.Fatalf("round %d, %s: the victim's virtual server %s holds %v, want only %s (the victim's pod; thief's is %s)",
					round, n.Name, addr, all, victimRS, thiefRS)
			}
			if has, err := hasIPSetEntry(n, "KUBE-EXTERNAL-IP", entry); err != nil || has {
				c.DumpState(t)
				t.Fatalf("round %d, %s: KUBE-EXTERNAL-IP entry %s present=%v (%v), want absent", round, n.Name, entry, has, err)
			}
		}
		for i := 0; i < 8; i++ {
			r, err := framework.Echo(client.NS, "tcp", addr, 3*time.Second)
			if err != nil {
				t.Fatalf("round %d: %s from %s: %v", round, addr, client.Name, err)
			}
			if err := expectFrom(victimPod.Name, client.IP.String())(r); err != nil {
				t.Fatalf("round %d: %s: %v", round, addr, err)
			}
		}
	}
	t.Logf("3 rounds of syncs: %s holds only %s on every node, no KUBE-EXTERNAL-IP entry, 24 connections answered by %s",
		addr, victimRS, victimPod.Name)

	c.Eventually(t, "Warning AddressRefused on the thief naming "+vip, func() error {
		evs, err := serviceEvents(c, tns, thief.Name, "AddressRefused")
		if err != nil {
			return err
		}
		for _, e := range evs {
			if e.Type == corev1.EventTypeWarning && strings.Contains(e.Message, vip) && strings.Contains(e.Message, "cluster IP") {
				t.Logf("event: %s", e.Message)
				return nil
			}
		}
		return fmt.Errorf("%d AddressRefused events on %s/%s, none naming %s as a cluster IP", len(evs), tns, thief.Name, vip)
	})
	for _, n := range c.Net.Nodes {
		v, cnt, err := nodeMetric(n, "kubeproxy_ipvs_refused_addresses", map[string]string{"reason": "cluster-ip"})
		if err != nil || cnt == 0 || v < 1 {
			t.Fatalf("%s: kubeproxy_ipvs_refused_addresses{reason=\"cluster-ip\"} = %v (%d samples, %v), want >= 1", n.Name, v, cnt, err)
		}
	}
}

// takeoverObserved (upstream) makes syncs happen until the thief's pod has been read back as a
// weighted real server of the victim's virtual server on some node and a connection from client
// (node1) to addr has been answered by the thief's pod.
func takeoverObserved(t *testing.T, c *framework.Cluster, ns, addr string, client, victimPod, thiefPod *framework.Pod, vip string) {
	t.Helper()
	tick := c.CreateService(t, ns, "tick", []framework.ServicePort{{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 80, Target: 8080}}, nil, nil)
	thiefRS := ep(thiefPod.IP, 8080)
	var inKernel, answered string
	answers := map[string]int{}
	deadline := time.Now().Add(3 * c.Cfg.Timeout)
	lastTick := time.Time{}
	flip := false
	for time.Now().Before(deadline) && (inKernel == "" || answered == "") {
		if time.Since(lastTick) > 3*time.Second { // another sync on every node
			flip = !flip
			pods := []*framework.Pod{victimPod}
			if flip {
				pods = nil
			}
			c.SetEndpoints(t, tick, pods)
			lastTick = time.Now()
		}
		for _, n := range c.Net.Nodes {
			all, err := c.IPVSRealServers(n, vip, 80, "tcp")
			if err != nil {
				continue
			}
			for _, rs := range all {
				if rs.Addr == thiefRS && rs.Weight > 0 && inKernel == "" {
					inKernel = fmt.Sprintf("%s: %s holds %v", n.Name, addr, all)
				}
			}
		}
		if r, err := framework.Echo(client.NS, "tcp", addr, 2*time.Second); err == nil {
			answers[r.Pod]++
			if r.Pod == thiefPod.Name {
				answered = fmt.Sprintf("%s answered %s from %s", r.Pod, addr, client.Name)
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("answers to %s from %s: %v", addr, client.Name, answers)
	if inKernel == "" || answered == "" {
		c.DumpState(t)
		t.Fatalf("upstream: thief's pod as a weighted real server of %s: %q; a connection answered by it: %q (want both)", addr, inKernel, answered)
	}
	t.Logf("upstream, read back: %s", inKernel)
	t.Logf("upstream, traffic: %s", answered)
}
