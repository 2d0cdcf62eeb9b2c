package e2e

// Issue 6 (docs/masquerade-random-fully.md): --masquerade-random-fully=auto|always|never.
//
// node1 (the node itself, not a pod) connects to a ClusterIP whose only endpoint is on node2:
// IPVS DNATs it, KUBE-MARK-MASQ marks it, KUBE-POSTROUTING masquerades the inner packet, flannel.1
// wraps it in UDP to node2:8472. With a rule that puts the masquerade bit on that outer packet
// (what kube-proxy before 1.19, or a CNI/agent, does), KUBE-POSTROUTING masquerades the outer
// packet too, and with --random-fully its UDP source port is rewritten. The guest kernel (6.1) has
// the UDP checksum-offload fix (5.7), so the rewritten packet is NOT dropped here and the
// connection succeeds either way: the scenario asserts the port rewrite (the precondition of the
// "63 second delay") from node1's conntrack entry of the outer flow, not the drop.

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/framework"
	corev1 "k8s.io/api/core/v1"
)

func init() { register("ForkMasqueradeRandomFullyVXLAN", testForkMasqueradeRandomFullyVXLAN) }

// vxlanFlow is node1's conntrack entry of an outer VXLAN flow node1 -> node2:8472.
type vxlanFlow struct {
	line                 string
	origSrc, origSport   string
	replyDst, replyDport string
}

func (f vxlanFlow) rewritten() bool { return f.replyDport != f.origSport || f.replyDst != f.origSrc }

func parseConntrack(out, src, dst string) []vxlanFlow {
	var flows []vxlanFlow
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "udp") {
			continue
		}
		var kv [][2]string
		for _, f := range strings.Fields(line) {
			if k, v, ok := strings.Cut(f, "="); ok {
				kv = append(kv, [2]string{k, v})
			}
		}
		// orig: src dst sport dport, then reply: src dst sport dport
		var orig, reply = map[string]string{}, map[string]string{}
		for _, p := range kv {
			m := orig
			if _, seen := orig[p[0]]; seen || len(orig) == 4 {
				m = reply
			}
			if _, seen := m[p[0]]; !seen {
				m[p[0]] = p[1]
			}
		}
		if orig["src"] != src || orig["dst"] != dst || orig["dport"] != fmt.Sprint(framework.FlannelPort) {
			continue
		}
		flows = append(flows, vxlanFlow{line: line, origSrc: orig["src"], origSport: orig["sport"],
			replyDst: reply["dst"], replyDport: reply["dport"]})
	}
	return flows
}

func testForkMasqueradeRandomFullyVXLAN(t *testing.T, c *framework.Cluster) {
	ctx := context.Background()
	node1, node2 := c.Node(1), c.Node(2)
	ours := c.Impl.Name != "upstream"
	if ours { // every mode change restarts node1's kube-proxy; restored to the default at the end
		c.RestoreProxiesOnCleanup(t, node1)
	}
	ns := c.Namespace(t)
	backend := c.AddPod(t, 2, "rf-echo", 8080)
	svc := c.CreateService(t, ns, "echo", []framework.ServicePort{
		{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 80, Target: 8080},
	}, []*framework.Pod{backend}, nil)
	addr := net.JoinHostPort(svc.Spec.ClusterIP, "80")
	markRule := []string{"-w", "-t", "mangle", "POSTROUTING", "-p", "udp", "--dport", fmt.Sprint(framework.FlannelPort),
		"-j", "MARK", "--or-mark", "0x4000"}
	ipt := func(op string) error {
		args := append([]string{markRule[0], markRule[1], markRule[2], op}, markRule[3:]...)
		_, err := node1.Run(ctx, "iptables", args...)
		return err
	}
	t.Cleanup(func() { _ = ipt("-D") })

	// trial connects node1 -> ClusterIP (endpoint on node2) over a fresh outer flow and returns
	// node1's conntrack entries of the outer VXLAN flow(s).
	trial := func(what string, mark bool) []vxlanFlow {
		t.Helper()
		if mark {
			if err := ipt("-A"); err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := ipt("-D"); err != nil {
					t.Fatal(err)
				}
			}()
		}
		// NAT is decided on a flow's first packet: start from no outer flow at all.
		_, _ = node1.Run(ctx, "conntrack", "-D", "-p", "udp", "--dport", fmt.Sprint(framework.FlannelPort))
		c.EventuallyEcho(t, node1.NS, "tcp", addr, func(r framework.Reply) error {
			if r.Pod != backend.Name {
				return fmt.Errorf("answered by %q, want %q", r.Pod, backend.Name)
			}
			return nil
		})
		out, err := node1.Run(ctx, "conntrack", "-L", "-p", "udp", "--dport", fmt.Sprint(framework.FlannelPort))
		if err != nil {
			t.Fatal(err)
		}
		flows := parseConntrack(out, node1.IP.String(), node2.IP.String())
		if len(flows) == 0 {
			c.DumpState(t)
			t.Fatalf("%s: no conntrack entry of the outer VXLAN flow %s -> %s:%d on node1:\n%s", what, node1.IP, node2.IP, framework.FlannelPort, out)
		}
		for _, f := range flows {
			t.Logf("%s: outer flow %s", what, strings.Join(strings.Fields(f.line), " "))
		}
		return flows
	}
	expect := func(what string, flows []vxlanFlow, wantRewritten bool) {
		t.Helper()
		for _, f := range flows {
			if f.rewritten() != wantRewritten {
				c.DumpState(t)
				t.Fatalf("%s: outer VXLAN flow sport %s -> reply to %s:%s: rewritten=%v, want %v\n%s", what, f.origSport,
					f.replyDst, f.replyDport, f.rewritten(), wantRewritten, f.line)
			}
		}
	}
	postrouting := func() string {
		out, err := node1.Run(ctx, "iptables", "-w", "-t", "nat", "-S", "KUBE-POSTROUTING")
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	if !ours {
		expect("upstream, marked", trial("upstream, marked", true), true)
		expect("upstream, unmarked", trial("upstream, unmarked", false), false)
		return
	}
	for _, mode := range []string{"auto", "never", "always"} {
		if mode != "auto" { // auto is the default the cluster runs with
			c.RestartProxy(t, node1, "", "--masquerade-random-fully="+mode)
		}
		rules := postrouting()
		vxlanRule := strings.Contains(rules, fmt.Sprintf("--dport %d", framework.FlannelPort))
		randomFully := strings.Contains(rules, "--random-fully")
		// iptables -S prints --xor-mark 0x4000 as --set-xmark 0x4000/0x0.
		clearsMark := strings.Contains(rules, "--xor-mark") || strings.Contains(rules, "--set-xmark 0x4000/0x0")
		if vxlanRule != (mode == "auto") || randomFully != (mode != "never") || !clearsMark {
			t.Fatalf("mode %s: KUBE-POSTROUTING on node1 (VXLAN rule %v, --random-fully %v) is not as documented:\n%s", mode, vxlanRule, randomFully, rules)
		}
		expect(mode+", marked", trial(mode+", marked", true), mode == "always")
		expect(mode+", unmarked", trial(mode+", unmarked", false), false)
	}
}
