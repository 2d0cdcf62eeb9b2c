package e2e

// Read-backs shared by the issue-27 scenarios (fork_clusterip_takeover, fork_invalid_endpoint_port,
// fork_bad_config, fault_*): a node's metrics, its ipsets, the Events on a Service, a kube-proxy
// process started outside the framework's Proxy.

import (
	"bufio"
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/framework"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// nodeMetric scrapes the kube-proxy of node (127.0.0.1:10249 in its namespace) and returns the
// sum of the samples of metric whose labels include every pair of want, and how many matched.
func nodeMetric(node *framework.Node, metric string, want map[string]string) (float64, int, error) {
	code, body, err := node.HTTPGet("http://127.0.0.1:10249/metrics", 5*time.Second)
	if err != nil {
		return 0, 0, err
	}
	if code != 200 {
		return 0, 0, fmt.Errorf("%s metrics: HTTP %d", node.Name, code)
	}
	sum, n := 0.0, 0
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, metric) || strings.HasPrefix(l, "#") {
			continue
		}
		rest := l[len(metric):]
		labels := ""
		switch {
		case strings.HasPrefix(rest, "{"):
			end := strings.Index(rest, "}")
			if end < 0 {
				continue
			}
			labels, rest = rest[1:end], rest[end+1:]
		case strings.HasPrefix(rest, " "):
		default:
			continue // another metric whose name starts with this one
		}
		ok := true
		for k, v := range want {
			ok = ok && strings.Contains(","+labels+",", ","+k+"=\""+v+"\",")
		}
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: sample %q: %v", metric, l, err)
		}
		sum += v
		n++
	}
	return sum, n, nil
}

// ipsetEntries lists the entries of set in node's namespace (`ipset list`), sorted.
func ipsetEntries(node *framework.Node, set string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := node.Run(ctx, "ipset", "list", set)
	if err != nil {
		return nil, err
	}
	_, members, ok := strings.Cut(out, "Members:\n")
	if !ok {
		return nil, fmt.Errorf("ipset list %s on %s: no Members section:\n%s", set, node.Name, out)
	}
	entries := []string{}
	for _, l := range strings.Split(members, "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			entries = append(entries, f[0])
		}
	}
	sort.Strings(entries)
	return entries, nil
}

// hasIPSetEntry reports whether set holds entry on node.
func hasIPSetEntry(node *framework.Node, set, entry string) (bool, error) {
	es, err := ipsetEntries(node, set)
	if err != nil {
		return false, err
	}
	i := sort.SearchStrings(es, entry)
	return i < len(es) && es[i] == entry, nil
}

// serviceEvents returns the Events on Service ns/name with reason.
func serviceEvents(c *framework.Cluster, ns, name, reason string) ([]corev1.Event, error) {
	evs, err := c.Client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []corev1.Event
	for _, e := range evs.Items {
		if e.InvolvedObject.Kind == "Service" && e.InvolvedObject.Name == name && e.Reason == reason {
			out = append(out, e)
		}
	}
	return out, nil
}

// waitSyncAfter waits until node i's kube-proxy reports a sync completed after since (its
// kubeproxy_sync_proxy_rules_last_timestamp_seconds): a change made before since is then in
// the kernel, if the proxy applies it.
func waitSyncAfter(t *testing.T, c *framework.Cluster, i int, since time.Time) {
	t.Helper()
	deadline := time.Now().Add(c.Cfg.Timeout)
	for {
		ts, err := c.ProxyOn(i).LastSync()
		if err == nil && ts.After(since) {
			return
		}
		if time.Now().After(deadline) {
			c.DumpState(t)
			t.Fatalf("node%d: no sync completed after %v in %v (last %v, %v)", i, since.Format(time.RFC3339Nano), c.Cfg.Timeout, ts, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
