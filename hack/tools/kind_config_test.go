package tools

// hack/kind's configs through kind's own loader and validation. kind offers them only inside
// cluster creation (pkg/internal is not importable), so the test runs that with a stand-in
// `docker` on PATH: it answers the two queries kind makes before it validates the config
// (`docker info`, `docker ps`) and records anything after, the first of which means the config
// was accepted; it says the node image is present and refuses the rest.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/log"
	"sigs.k8s.io/yaml"
)

const fakeDocker = `#!/bin/sh
case "$1" in
info) echo '{"CgroupDriver":"systemd","CgroupVersion":"2","MemoryLimit":true,"PidsLimit":true,"CPUShares":true}' ;;
ps) ;;
inspect) echo "$*" >> "$FAKE_DOCKER_LOG" ;; # "the node image is here": kind would retry a pull for 10 s
*) echo "$*" >> "$FAKE_DOCKER_LOG"; echo "fake docker: refused" >&2; exit 1 ;;
esac
`

// kindCreate runs kind's cluster creation on config and says whether kind got past its config
// checks (to provisioning), with the error it returned.
func kindCreate(t *testing.T, config string) (accepted bool, err error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "docker"), []byte(fakeDocker), 0o755); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(dir, "calls")
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("FAKE_DOCKER_LOG", logFile)
	p := cluster.NewProvider(cluster.ProviderWithDocker(), cluster.ProviderWithLogger(log.NoopLogger{}))
	err = p.Create("kube-proxy-ipvs-config-check", cluster.CreateWithConfigFile(config), cluster.CreateWithRetain(true),
		cluster.CreateWithDisplayUsage(false), cluster.CreateWithDisplaySalutation(false))
	calls, _ := os.ReadFile(logFile)
	return len(calls) > 0, err
}

func TestKindConfigs(t *testing.T) {
	root := repoRoot(t)
	good, err := filepath.Glob(filepath.Join(root, "hack", "kind", "*.yaml"))
	if err != nil || len(good) < 2 {
		t.Fatalf("hack/kind/*.yaml: %v, %v", good, err)
	}
	for _, path := range good {
		t.Run(filepath.Base(path), func(t *testing.T) {
			if accepted, err := kindCreate(t, path); !accepted {
				t.Fatalf("kind refused the config: %v", err)
			}
			// What kind read: its public API types, strictly.
			data, _ := os.ReadFile(path)
			var c v1alpha4.Cluster
			if err := yaml.UnmarshalStrict(data, &c); err != nil {
				t.Fatal(err)
			}
			if c.Networking.KubeProxyMode != v1alpha4.IPVSProxyMode {
				t.Errorf("kubeProxyMode %q, want ipvs", c.Networking.KubeProxyMode)
			}
			if strings.Contains(filepath.Base(path), "1.40") && !c.FeatureGates["KubeProxyIPVS"] {
				t.Errorf("the 1.40 variant does not turn KubeProxyIPVS on: %v", c.FeatureGates)
			}
		})
	}

	// The same check refuses configs that are wrong, so an accepted one means something.
	cluster := func(networking string) string {
		return "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnetworking:\n" + networking
	}
	for name, config := range map[string]string{
		"unknown field":    cluster("  kubeProxyModes: ipvs\n"),
		"bad proxy mode":   cluster("  kubeProxyMode: ipvs-fork\n"),
		"bad feature gate": "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nfeatureGates:\n  KubeProxyIPVS: yes-please\n",
		"wrong apiVersion": "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha3\n",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cluster.yaml")
			if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
				t.Fatal(err)
			}
			if accepted, err := kindCreate(t, path); accepted || err == nil {
				t.Errorf("kind accepted it (error %v)", err)
			}
		})
	}
}
