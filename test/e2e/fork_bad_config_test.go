package e2e

// Issue 27 (2): a fork field of the wrong type in the --config file must stop kube-proxy.
//
// The file is a complete KubeProxyConfiguration for this lab (mode ipvs, the kubeconfig, node3's
// name, the flags every kube-proxy here gets) plus `ipvs: {protectedCIDRs: 10.0.0.0/8}`: a scalar
// where the fork wants a list. It is run with `--config=FILE` and no other flag, in a namespace of
// its own on the node network (so whatever the process creates is its doing, and the cluster's
// nodes are not touched):
//
//   - ours exits non-zero within seconds with an error naming protectedCIDRs, and the namespace,
//     read back, has no kube-ipvs0, no IPVS virtual server, no ipset and no KUBE-* chain;
//   - upstream (which has no fork fields) decodes the file leniently, logs the unknown field and
//     runs: it creates kube-ipvs0 and keeps running. That is the failure the fork must not copy:
//     an operator's protected CIDRs silently not in force. (Before the fix, ours did the same:
//     the wrong type made its loader hand the file to upstream's lenient decoder.)

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	libipvs "github.com/moby/ipvs"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/framework"
)

func init() { register("ForkBadForkConfig", testForkBadForkConfig) }

// badConfigExit: how long ours may take to refuse the file (a Go binary's start under emulation
// takes a second or two).
const badConfigExit = 20 * time.Second

func badForkConfig(kubeconfig string) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: ipvs
hostnameOverride: node3
clusterCIDR: %s
clientConnection:
  kubeconfig: %s
conntrack:
  maxPerCore: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
oomScoreAdj: 0
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 0.0.0.0:10256
ipvs:
  protectedCIDRs: 10.0.0.0/8
`, framework.ClusterCIDR, kubeconfig)
}

func testForkBadForkConfig(t *testing.T, c *framework.Cluster) {
	dir := c.LogDir
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, "bad-fork-config.yaml")
	if err := os.WriteFile(path, []byte(badForkConfig(c.Cfg.Kubeconfig)), 0o644); err != nil {
		t.Fatal(err)
	}
	host := c.AddHost(t, "badcfg", "172.30.0.150")
	logPath := filepath.Join(dir, "bad-fork-config-"+c.Impl.Name+".log")

	if c.Impl.Name == "upstream" {
		upstreamRunsBadConfig(t, c, host, path, logPath)
		return
	}

	ctx, cancel := context.WithTimeout(context.Background(), badConfigExit)
	defer cancel()
	start := time.Now()
	out, err := host.Run(ctx, c.Impl.Binary, "--config="+path)
	took := time.Since(start)
	_ = os.WriteFile(logPath, []byte(out), 0o644)
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("ours still ran after %v with %s (killed); output:\n%s", badConfigExit, path, out)
	case err == nil:
		t.Fatalf("ours exited 0 with %s in %v; output:\n%s", path, took, out)
	case !errors.As(err, &exit):
		t.Fatalf("ours: %v", err)
	}
	if !strings.Contains(out, "protectedCIDRs") {
		t.Fatalf("ours exited with status %d in %v, but its output does not name protectedCIDRs:\n%s", exit.ExitCode(), took, out)
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "protectedCIDRs") {
			t.Logf("ours exited with status %d after %v: %s", exit.ExitCode(), took.Round(time.Millisecond), strings.TrimSpace(l))
			break
		}
	}
	if err := nothingProgrammed(host); err != nil {
		t.Fatalf("after ours refused the file: %v", err)
	}
	t.Logf("%s: no kube-ipvs0, no IPVS virtual server, no ipset, no KUBE-* chain", host.Name)
}

// nothingProgrammed reads ns back: no kube-ipvs0, no IPVS virtual server, no ipset, no KUBE-* chain.
func nothingProgrammed(ns *framework.NS) error {
	if l, err := ns.NL.LinkByName("kube-ipvs0"); err == nil {
		return fmt.Errorf("%s has kube-ipvs0 (index %d)", ns.Name, l.Attrs().Index)
	}
	h, err := libipvs.New(ns.Path())
	if err != nil {
		return err
	}
	defer h.Close()
	svcs, err := h.GetServices()
	if err != nil {
		return err
	}
	if len(svcs) > 0 {
		return fmt.Errorf("%s has %d IPVS virtual servers", ns.Name, len(svcs))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sets, err := ns.Run(ctx, "ipset", "list", "-n")
	if err != nil {
		return err
	}
	if s := strings.TrimSpace(sets); s != "" {
		return fmt.Errorf("%s has ipsets: %s", ns.Name, strings.Join(strings.Fields(s), " "))
	}
	for _, table := range []string{"nat", "filter"} {
		rules, err := ns.Run(ctx, "iptables-save", "-t", table)
		if err != nil {
			return err
		}
		if strings.Contains(rules, "KUBE-") {
			return fmt.Errorf("%s has KUBE-* chains in %s:\n%s", ns.Name, table, rules)
		}
	}
	return nil
}

// upstreamRunsBadConfig: upstream's kube-proxy with the file logs the lenient decoding, creates
// kube-ipvs0 and is still running.
func upstreamRunsBadConfig(t *testing.T, c *framework.Cluster, host *framework.NS, path, logPath string) {
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(c.Impl.Binary, "--config="+path)
	cmd.Stdout, cmd.Stderr = logf, logf
	start := time.Now()
	if err := host.Start(cmd); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	deadline := time.Now().Add(c.Cfg.Timeout)
	for {
		select {
		case err := <-done:
			done <- err
			b, _ := os.ReadFile(logPath)
			t.Fatalf("upstream exited (%v) with %s; want it to run (lenient decoding); log:\n%s", err, path, b)
		default:
		}
		if _, err := host.NL.LinkByName("kube-ipvs0"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("upstream: no kube-ipvs0 in %s after %v; log:\n%s", host.Name, c.Cfg.Timeout, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	took := time.Since(start)
	time.Sleep(2 * time.Second)
	select {
	case err := <-done:
		done <- err
		t.Fatalf("upstream exited (%v) after creating kube-ipvs0", err)
	default:
	}
	b, _ := os.ReadFile(logPath)
	var lenient string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "lenient") && strings.Contains(l, "protectedCIDRs") {
			lenient = strings.TrimSpace(l)
		}
	}
	if lenient == "" {
		t.Fatalf("upstream runs, but its log has no lenient-decoding line naming protectedCIDRs:\n%s", b)
	}
	t.Logf("upstream with %s: kube-ipvs0 created after %v, still running; it logged: %s", path, took.Round(time.Millisecond), lenient)
}
