package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/framework"
	corev1 "k8s.io/api/core/v1"
)

// TestIPTablesParity (runs once, with both implementations): --proxy-mode=iptables. Upstream,
// ours with --masquerade-random-fully=always and ours by default (auto) each run in their own
// node namespace of a fresh lab network (each with flannel's VXLAN device, UDP 8472), all as
// node1 (--hostname-override), against the same Services. Their iptables-save of the nat and
// filter tables, normalized (comments and counters dropped, lines sorted: upstream writes
// Services in map order; KUBE-SVC-/KUBE-SEP- hashes are deterministic), must be:
//   - ours (always) == upstream, exactly;
//   - ours (auto, the fork's default) == upstream plus only the rules the fork inserts in
//     KUBE-POSTROUTING to masquerade VXLAN-encapsulated traffic (port 8472) without
//     --random-fully; at least one, since the node has a VXLAN device (the deliberate difference).
//
// Traffic: from the client, NodePort on the namespaces of upstream and ours (auto) answers from
// the right pod.
func TestIPTablesParity(t *testing.T) {
	if skipReason != "" {
		t.Skip(skipReason)
	}
	up, ours := bothImpls(t)
	logDir := filepath.Join(cfg.Artifacts, "iptables")
	if cfg.Artifacts == "" {
		logDir = t.TempDir()
	}
	_ = os.MkdirAll(logDir, 0o755)
	nw, err := framework.NewNetwork("i", 3, cfg.EchoServer, logDir)
	if err != nil {
		t.Fatalf("network: %v", err)
	}
	c := &framework.Cluster{Impl: up, Client: client, Net: nw, Cfg: cfg, LogDir: logDir}
	t.Cleanup(nw.Close)
	ns := c.Namespace(t)
	a := c.AddPod(t, 1, "ipt-a", 8080)
	b := c.AddPod(t, 2, "ipt-b", 8080)
	ports := []framework.ServicePort{
		{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 80, Target: 8080},
		{Name: "udp", Protocol: corev1.ProtocolUDP, Port: 80, Target: 8080},
	}
	c.CreateService(t, ns, "cip", ports, []*framework.Pod{a, b}, nil)
	c.CreateService(t, ns, "aff", ports[:1], []*framework.Pod{a, b}, func(s *corev1.Service) {
		s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	})
	np := c.CreateService(t, ns, "np", ports, []*framework.Pod{a, b}, func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort })
	lb := c.CreateService(t, ns, "lb", ports[:1], []*framework.Pod{a}, func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeLoadBalancer
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		s.Spec.LoadBalancerSourceRanges = []string{"172.30.0.0/24"}
	})
	c.SetLoadBalancerIngress(t, lb, "192.168.100.30")
	c.CreateService(t, ns, "eip", ports[:1], []*framework.Pod{b}, func(s *corev1.Service) { s.Spec.ExternalIPs = []string{"192.168.200.30"} })

	type run struct {
		name  string
		impl  framework.Impl
		extra []string
		node  *framework.Node
		p     *framework.Proxy
	}
	runs := []*run{
		{name: "upstream", impl: up, node: nw.Nodes[0]},
		{name: "ours-always", impl: ours, node: nw.Nodes[1], extra: []string{"--masquerade-random-fully=always"}},
		{name: "ours-auto", impl: ours, node: nw.Nodes[2]},
	}
	start := time.Now()
	for _, r := range runs {
		args := append([]string{"--proxy-mode=iptables", "--hostname-override=node1"}, r.extra...)
		if r.p, err = framework.StartProxy(r.impl, r.node, cfg.Kubeconfig, logDir, args...); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.p.Stop)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
	defer cancel()
	for _, r := range runs {
		if err := r.p.WaitSynced(ctx, start); err != nil {
			t.Fatalf("%s (%s): %v", r.name, r.node.Name, err)
		}
	}
	dump := func(r *run) (map[string]bool, string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var raw strings.Builder
		for _, table := range []string{"nat", "filter"} {
			out, err := r.node.Run(ctx, "iptables-save", "-t", table)
			if err != nil {
				return nil, "", err
			}
			raw.WriteString(out)
		}
		set, norm := normalizeIPTables(raw.String())
		return set, norm, nil
	}
	// Poll: the three may sync the last objects at different moments.
	var last string
	deadline := time.Now().Add(cfg.Timeout)
	for {
		sets := map[string]map[string]bool{}
		norms := map[string]string{}
		for _, r := range runs {
			s, n, err := dump(r)
			if err != nil {
				t.Fatal(err)
			}
			sets[r.name], norms[r.name] = s, n
			_ = os.WriteFile(filepath.Join(logDir, "iptables-"+r.name+".txt"), []byte(n), 0o644)
		}
		last = ""
		if !strings.Contains(norms["upstream"], "192.168.100.30") || !strings.Contains(norms["upstream"], "192.168.200.30") {
			last = "upstream has not programmed every Service yet"
		} else if d := setDiff(sets["upstream"], sets["ours-always"]); d != "" {
			last = "upstream vs ours (always):\n" + d
		} else {
			var extra []string
			for l := range sets["ours-auto"] {
				if !sets["upstream"][l] {
					extra = append(extra, l)
				}
			}
			var missing []string
			for l := range sets["upstream"] {
				if !sets["ours-auto"][l] {
					missing = append(missing, l)
				}
			}
			sort.Strings(extra)
			bad := len(missing) > 0 || len(extra) == 0
			for _, l := range extra {
				if !strings.HasPrefix(l, "*nat -A KUBE-POSTROUTING ") || !strings.Contains(l, "8472") {
					bad = true
				}
			}
			if bad {
				last = fmt.Sprintf("ours (auto): want upstream + VXLAN (8472) KUBE-POSTROUTING rules only; extra %q, missing %q", extra, missing)
			} else {
				t.Logf("nat+filter: %d normalized lines identical for upstream and ours (always); ours (auto) adds only:\n%s",
					len(sets["upstream"]), strings.Join(extra, "\n"))
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s\n(normalized dumps in %s)", cfg.Timeout, last, logDir)
		}
		time.Sleep(time.Second)
	}
	// Traffic through the iptables rules of upstream's node and ours (auto).
	for _, r := range []*run{runs[0], runs[2]} {
		addr := fmt.Sprintf("%s:%d", r.node.IP, np.Spec.Ports[0].NodePort)
		got := c.EventuallyEcho(t, nw.Client, "tcp", addr, func(rep framework.Reply) error {
			if rep.Pod != a.Name && rep.Pod != b.Name {
				return fmt.Errorf("answered by %q", rep.Pod)
			}
			return nil
		})
		t.Logf("%s: NodePort %s answered by %s, which saw %s", r.name, addr, got.Pod, got.Client)
	}
}

var countersRE = regexp.MustCompile(`\[\d+:\d+\]`)

// normalizeIPTables drops comments, COMMIT and counters; each line is keyed "*table rule".
func normalizeIPTables(s string) (map[string]bool, string) {
	set := map[string]bool{}
	table := ""
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") || l == "COMMIT" {
			continue
		}
		if strings.HasPrefix(l, "*") {
			table = l
			continue
		}
		l = countersRE.ReplaceAllString(l, "[0:0]")
		set[table+" "+l] = true
		lines = append(lines, table+" "+l)
	}
	sort.Strings(lines)
	return set, strings.Join(lines, "\n") + "\n"
}

func setDiff(a, b map[string]bool) string {
	var out []string
	for l := range a {
		if !b[l] {
			out = append(out, "- "+l)
		}
	}
	for l := range b {
		if !a[l] {
			out = append(out, "+ "+l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}
