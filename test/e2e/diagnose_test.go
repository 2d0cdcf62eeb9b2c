package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/diagnose"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/framework"
)

// TestDiagnose (issue 22, docs/diagnose.md; runs once, with both implementations): node1 runs
// upstream kube-proxy and is given three of the failure modes `kube-proxy diagnose` looks for:
//   - an agent's rule that marks flannel.1's tunnel packets for masquerade, which upstream's
//     MASQUERADE --random-fully then rewrites (tunnel-double-masquerade), on a VXLAN link with tx
//     checksum offload on (vxlan-checksum-offload: info, the lab kernel has the fix);
//   - an externalTrafficPolicy: Local LoadBalancer whose ingress IP upstream binds to kube-ipvs0
//     (lb-ingress-martian), with rp_filter on;
//   - an externalIP equal to node2's address, which upstream binds on node1
//     (service-address-collision, error).
//
// Our diagnose, run in node1's namespace, must report each with its id. Then node1 swaps to our
// kube-proxy with --ipvs-bind-lb-ingress=false (the fix for the martian drop; auto random-fully
// and the address guard are defaults): the same diagnose must report none of them at warning
// or above, and nothing at all for the two VXLAN checks.
func TestDiagnose(t *testing.T) {
	if skipReason != "" {
		t.Skip(skipReason)
	}
	up, ours := bothImpls(t)
	// The cluster starts with ours everywhere (cheap), the Services and the agent's rule are
	// made, and only then does node1 switch to upstream: its first sync programs them all, and
	// no other upstream competes for the guest's one CPU.
	c, skip := framework.StartClusterPrefixed(t, cfg, client, ours, "d")
	if skip != "" {
		t.Skip(skip)
	}
	ctx := context.Background()
	node1, node2 := c.Node(1), c.Node(2)
	ns := c.Namespace(t)
	backend := c.AddPod(t, 2, "diag-echo", 8080)
	const lbIP = "192.168.100.31"
	lb := c.CreateService(t, ns, "lb", []framework.ServicePort{{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 80, Target: 8080}},
		[]*framework.Pod{backend}, func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		})
	c.SetLoadBalancerIngress(t, lb, lbIP)
	c.CreateService(t, ns, "oops", []framework.ServicePort{{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 8888, Target: 8080}},
		[]*framework.Pod{backend}, func(s *corev1.Service) { s.Spec.ExternalIPs = []string{node2.IP.String()} })
	mark := []string{"-w", "-t", "mangle", "-A", "POSTROUTING", "-p", "udp", "--dport", fmt.Sprint(framework.FlannelPort), "-j", "MARK", "--or-mark", "0x4000"}
	if _, err := node1.Run(ctx, "iptables", mark...); err != nil {
		t.Fatal(err)
	}
	if err := node1.Sysctl("net/ipv4/conf/all/rp_filter", "1"); err != nil {
		t.Fatal(err)
	}
	c.ReplaceProxy(t, 1, up)
	c.Eventually(t, "upstream binds the LB IP and node2's address on node1", func() error {
		for _, ip := range []string{lbIP, node2.IP.String()} {
			if ok, err := node1.HasKubeIPVS0Addr(ip); err != nil || !ok {
				return fmt.Errorf("%s not on kube-ipvs0 (%v)", ip, err)
			}
		}
		return nil
	})

	start := time.Now()
	rep, code := runDiagnose(t, c, node1, ours)
	t.Logf("diagnose on upstream's node1 took %v, exit %d", time.Since(start).Round(time.Millisecond), code)
	if code != 2 {
		t.Errorf("exit status %d on upstream's node1, want 2 (findings)", code)
	}
	for id, sev := range map[string]diagnose.Severity{
		diagnose.IDTunnelDoubleMasquerade: diagnose.Warning,
		diagnose.IDVXLANChecksum:          diagnose.Info, // the lab kernel (6.1) has the checksum fix
		diagnose.IDLBIngressMartian:       diagnose.Warning,
		diagnose.IDAddressCollision:       diagnose.Error,
	} {
		f, ok := findingOf(rep, id, sev)
		if !ok {
			t.Errorf("upstream's node1: no %s finding at %s:\n%s", id, sev, reportText(rep))
			continue
		}
		t.Logf("upstream's node1: %s %s: %s\n  %s", f.Severity, f.ID, f.Title, strings.Join(f.Evidence, "\n  "))
	}
	if f, _ := findingOf(rep, diagnose.IDAddressCollision, diagnose.Error); !strings.Contains(strings.Join(f.Evidence, "\n"), "node node2") {
		t.Errorf("address collision evidence does not name node2: %v", f.Evidence)
	}
	if f, _ := findingOf(rep, diagnose.IDLBIngressMartian, diagnose.Warning); !strings.Contains(strings.Join(f.Evidence, "\n"), "rp_filter = 1") {
		t.Errorf("martian evidence lacks rp_filter: %v", f.Evidence)
	}

	c.ReplaceProxy(t, 1, ours, "--ipvs-bind-lb-ingress=false")
	var last diagnose.Report
	c.Eventually(t, "diagnose on our node1 finds none of the fixed failure modes", func() error {
		start = time.Now()
		rep, code := runDiagnose(t, c, node1, ours)
		last = rep
		for _, f := range rep.Findings {
			if f.Severity >= diagnose.Warning || f.ID == diagnose.IDVXLANChecksum || f.ID == diagnose.IDTunnelDoubleMasquerade {
				return fmt.Errorf("still %s %s: %s (exit %d)", f.Severity, f.ID, f.Title, code)
			}
		}
		if code != 0 {
			return fmt.Errorf("exit %d", code)
		}
		return nil
	})
	t.Logf("diagnose on our node1 took %v:\n%s", time.Since(start).Round(time.Millisecond), reportText(last))
	if _, ok := findingOf(last, diagnose.IDLBIngressUnbound, diagnose.Info); !ok {
		t.Errorf("our node1: the unbound LB IP is not reported (lb-ingress-unbound, info)")
	}
}

// runDiagnose runs `kube-proxy diagnose -o json` of impl's binary in node's namespace.
func runDiagnose(t *testing.T, c *framework.Cluster, node *framework.Node, impl framework.Impl) (diagnose.Report, int) {
	t.Helper()
	// A guard against a hung process, not a claim about speed: under emulation, with other
	// guests on the host, one run took over a minute where it usually takes seconds.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, impl.Binary, "diagnose", "-o", "json", "--kubeconfig="+c.Cfg.Kubeconfig, "--hostname-override="+node.Name)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := node.Do(cmd.Run)
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("diagnose: %v: %s", err, stderr.String())
	}
	var rep diagnose.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("diagnose (exit %d): %v\nstdout:\n%s\nstderr:\n%s", code, err, stdout.String(), stderr.String())
	}
	return rep, code
}

func findingOf(r diagnose.Report, id string, sev diagnose.Severity) (diagnose.Finding, bool) {
	for _, f := range r.Findings {
		if f.ID == id && f.Severity == sev {
			return f, true
		}
	}
	return diagnose.Finding{}, false
}

func reportText(r diagnose.Report) string {
	var b strings.Builder
	_ = diagnose.WriteText(&b, r, false)
	return b.String()
}
