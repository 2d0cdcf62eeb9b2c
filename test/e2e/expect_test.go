package e2e

import (
	"fmt"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/framework"
)

// Shared checks of the scenarios in their own files.

// expectFromNode returns a check that pod answered and saw one of node's own addresses as the
// source (the request was masqueraded by that node).
func expectFromNode(pod string, node *framework.Node) func(framework.Reply) error {
	return func(r framework.Reply) error {
		if r.Pod != pod {
			return fmt.Errorf("answered by %q, want %q", r.Pod, pod)
		}
		if addrs := node.NodeAddrs(); !addrs[r.ClientIP()] {
			return fmt.Errorf("%s saw client %s, want one of %s's addresses %v (masquerade)", r.Pod, r.Client, node.Name, keys(addrs))
		}
		return nil
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// mustNotAnswer checks that n attempts from ns to addr all fail (no pod answers).
func mustNotAnswer(t *testing.T, ns *framework.NS, proto, addr string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if r, err := framework.Echo(ns, proto, addr, 2*time.Second); err == nil {
			t.Fatalf("%s %s from %s: answered by %s (client %s), want no answer", proto, addr, ns.Name, r.Pod, r.Client)
		}
	}
}

// expectVirtualServer reads node's IPVS back and wants vip:port/proto with exactly dests
// (ip:port, weight > 0).
func expectVirtualServer(t *testing.T, c *framework.Cluster, node *framework.Node, vip string, port uint16, proto string, dests ...string) {
	t.Helper()
	if err := virtualServerMismatch(c, node, vip, port, proto, dests...); err != nil {
		t.Fatal(err)
	}
}

// virtualServerMismatch is expectVirtualServer's check as an error, for a c.Eventually.
func virtualServerMismatch(c *framework.Cluster, node *framework.Node, vip string, port uint16, proto string, dests ...string) error {
	got, err := c.IPVSDestinations(node, vip, port, proto)
	if err != nil {
		return fmt.Errorf("IPVS read-back on %s: %v", node.Name, err)
	}
	sort.Strings(got)
	want := append([]string(nil), dests...)
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		return fmt.Errorf("IPVS %s %s on %s: real servers %v, want %v", proto, net.JoinHostPort(vip, fmt.Sprint(port)), node.Name, got, want)
	}
	return nil
}

// expectDummyAddr wants (or not) ip on node's kube-ipvs0.
//
// Wanted present, the address may take a moment after traffic flows: ours binds it last in
// the sync that programs the Service, and traffic from the node's own network stack reaches
// IPVS without it (IPVS sees locally generated packets on output). Wanted absent, one look.
func expectDummyAddr(t *testing.T, node *framework.Node, ip string, want bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		addrs, _, err := node.AddrsOf("kube-ipvs0")
		if err != nil {
			t.Fatalf("%s kube-ipvs0: %v", node.Name, err)
		}
		has := false
		for _, a := range addrs {
			has = has || a == ip
		}
		if has == want {
			return
		}
		if !want || time.Now().After(deadline) {
			t.Fatalf("%s kube-ipvs0 holds %v: %s present=%v, want %v", node.Name, addrs, ip, has, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func ep(ip net.IP, port int) string { return net.JoinHostPort(ip.String(), fmt.Sprint(port)) }
