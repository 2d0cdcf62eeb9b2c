// Package e2e runs kube-proxy implementations against a real kernel's IPVS, inside the QEMU lab
// (hack/lab/run-in-guest.sh), with a real kube-apiserver on the host (hack/lab/control-plane.sh).
// Run everything with hack/e2e.sh. Outside the lab (no E2E_KUBECONFIG) every test skips.
//
// Layout of one run: for each implementation (upstream kube-proxy v1.37.2, ours), a fresh lab
// network (3 node namespaces, flannel-style VXLAN pod network, a client) is built, the
// implementation's kube-proxy starts on every node, and every scenario runs as a subtest:
//
//	TestProxy/<impl>/<Scenario>
package e2e

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/framework"
	"k8s.io/client-go/kubernetes"
)

var (
	cfg        framework.Config
	skipReason string
	client     kubernetes.Interface
)

func TestMain(m *testing.M) {
	if up, err := os.ReadFile("/proc/uptime"); err == nil && os.Getenv("LAB_GUEST") != "" {
		fmt.Printf("e2e: guest uptime at test start: %ss\n", strings.Fields(string(up))[0]) // boot time
	}
	cfg, skipReason = framework.LoadConfig()
	var err error
	if cfg.UpstreamForkOnly, err = framework.ParseUpstreamScope(os.Getenv("E2E_UPSTREAM")); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		os.Exit(2)
	}
	if skipReason == "" {
		if client, err = framework.NewClient(cfg.Kubeconfig); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			err = framework.EnsureNodes(ctx, client, cfg.Nodes)
			cancel()
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "e2e: cannot set up the cluster objects: %v\n", err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// scenario is one e2e check. It runs once per implementation, against a cluster running it.
type scenario struct {
	name string
	run  func(t *testing.T, c *framework.Cluster)
}

// scenarios: the first ones; every other scenario registers itself from its own file
// (test/e2e/<scenario>_test.go) with register in an init(), so adding one edits no shared list.
// Keep the names stable: the report keys on them.
var scenarios = []scenario{
	{"ClusterIPFromRemotePod", testClusterIPFromRemotePod},
	{"ClusterIPEndpointsUpdate", testClusterIPEndpointsUpdate},
	{"NodePortFromOutside", testNodePortFromOutside},
}

// registered are the scenarios added by register, run after scenarios in name order.
var registered = map[string]func(t *testing.T, c *framework.Cluster){}

// register adds a per-implementation scenario; call it from an init() of the scenario's file.
func register(name string, run func(t *testing.T, c *framework.Cluster)) {
	if _, dup := registered[name]; dup {
		panic("e2e: scenario registered twice: " + name)
	}
	registered[name] = run
}

// allScenarios is scenarios followed by the registered ones, sorted by name.
func allScenarios() []scenario {
	out := append([]scenario(nil), scenarios...)
	names := make([]string, 0, len(registered))
	for n := range registered {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		out = append(out, scenario{n, registered[n]})
	}
	return out
}

// TestProxy runs every scenario for every implementation (upstream, ours).
func TestProxy(t *testing.T) {
	if skipReason != "" {
		t.Skip(skipReason)
	}
	for _, impl := range cfg.Impls {
		t.Run(impl.Name, func(t *testing.T) {
			c, skip := framework.StartCluster(t, cfg, client, impl)
			for _, s := range allScenarios() {
				t.Run(s.name, func(t *testing.T) {
					if skip != "" {
						t.Skip(skip)
					}
					if impl.Name == "upstream" && cfg.UpstreamForkOnly && !strings.HasPrefix(s.name, "Fork") {
						t.Skip("E2E_UPSTREAM=fork: upstream runs the Fork* scenarios only (E2E_UPSTREAM=all runs every one)")
					}
					s.run(t, c)
				})
			}
		})
	}
}

// bothImpls returns upstream's and our implementation for a test that runs once with both, or
// skips the test when either is not configured or not runnable.
func bothImpls(t *testing.T) (up, ours framework.Impl) {
	t.Helper()
	up, ok1 := cfg.FindImpl("upstream")
	ours, ok2 := cfg.FindImpl("ours")
	if !ok1 || !ok2 {
		t.Skip("needs both implementations (E2E_IMPLS)")
	}
	for _, im := range []framework.Impl{up, ours} {
		if r := im.Unavailable(); r != "" {
			t.Skip(r)
		}
	}
	return up, ours
}
