package app_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/cmd/kube-proxy/app"
)

// TestKubeadmConfigs loads every kube-proxy config file that kubeadm of each supported minor
// writes (testdata/kubeadm/v1.MINOR/, produced by kubeadm's own code at that release:
// hack/compat.sh, docs/compatibility.md) the way kube-proxy starts from kubeadm's DaemonSet
// (--config, --hostname-override): each must complete and validate, in the mode it names, with
// the featureGates it sets. KubeProxyIPVS false is the case upstream refuses from 1.37 on (with
// mode ipvs), and KubeProxyIPVS of either value the case upstream 1.36 and earlier refuse (no
// such gate); ours takes both.
func TestKubeadmConfigs(t *testing.T) {
	dirs, err := filepath.Glob("testdata/kubeadm/v1.*")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 4 {
		t.Fatalf("testdata/kubeadm holds %d releases, want the four of docs/compatibility.md", len(dirs))
	}
	for _, dir := range dirs {
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if len(files) != 4 {
			t.Errorf("%s: %d files, want default, ipvs, ipvs-gate-true, ipvs-gate-false", dir, len(files))
		}
		for _, file := range files {
			variant := strings.TrimSuffix(filepath.Base(file), ".yaml")
			t.Run(filepath.Base(dir)+"/"+variant, func(t *testing.T) {
				setIPVSGate(t, true) // Complete sets it from the file; restored afterwards
				data, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(string(data), "# kube-proxy config.conf as kubeadm "+filepath.Base(dir)+".") {
					t.Fatalf("%s was not written by kubeadm %s (hack/compat.sh configs)", file, filepath.Base(dir))
				}
				opts := app.NewOptions()
				fs := newFlagSet("ours")
				opts.AddFlags(fs)
				if err := fs.Parse([]string{"--config=" + file, "--hostname-override=node-1"}); err != nil {
					t.Fatal(err)
				}
				if err := opts.Complete(fs); err != nil {
					t.Fatalf("Complete: %v", err)
				}
				if err := opts.Validate(); err != nil {
					t.Fatalf("Validate: %v", err)
				}
				c := opts.Config()
				wantMode := kubeproxyconfig.ProxyModeIPTables // kubeadm's default (written out from 1.37, left empty before)
				if strings.HasPrefix(variant, "ipvs") {
					wantMode = kubeproxyconfig.ProxyModeIPVS
					if !c.IPVS.StrictARP {
						t.Error("ipvs.strictARP lost")
					}
				}
				if c.Mode != wantMode {
					t.Errorf("mode %q, want %q", c.Mode, wantMode)
				}
				if c.ClientConnection.Kubeconfig != "/var/lib/kube-proxy/kubeconfig.conf" || c.DetectLocal.ClusterCIDRs[0] != "10.244.0.0/16" ||
					c.HostnameOverride != "node-1" {
					t.Errorf("kubeadm's settings not loaded: kubeconfig %q, clusterCIDRs %v, hostname %q",
						c.ClientConnection.Kubeconfig, c.DetectLocal.ClusterCIDRs, c.HostnameOverride)
				}
				gate, set := c.FeatureGates[app.IPVSGate]
				switch variant {
				case "ipvs-gate-true", "ipvs-gate-false":
					if !set || gate != (variant == "ipvs-gate-true") {
						t.Errorf("featureGates %v, want KubeProxyIPVS %v", c.FeatureGates, variant == "ipvs-gate-true")
					}
				default:
					if set {
						t.Errorf("featureGates %v: kubeadm wrote no KubeProxyIPVS", c.FeatureGates)
					}
				}
			})
		}
	}
}
