package tools

// kubeadm's own code (its addon phase and component-config loading) run on a cluster whose
// kube-proxy is this project's, to show what an upgrade keeps: docs/install.md's recipe.

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	kubeproxyv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	kubeadmapi "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm"
	"k8s.io/kubernetes/cmd/kubeadm/app/componentconfigs"
	"k8s.io/kubernetes/cmd/kubeadm/app/phases/addons/proxy"
	configutil "k8s.io/kubernetes/cmd/kubeadm/app/util/config"
	"sigs.k8s.io/yaml"
)

const ourImage = "ghcr.io/kube-proxy-ipvs/kube-proxy:v1.37.2-ipvs.1"

// repoRoot is the repository's top directory: go test runs in the package's, hack/tools.
func repoRoot(t *testing.T) string {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// kubeadmConfig is kubeadm's defaulted configuration for one control-plane node.
func kubeadmConfig(t *testing.T, version string) *kubeadmapi.InitConfiguration {
	t.Helper()
	cfg, err := configutil.DefaultedStaticInitConfiguration()
	if err != nil {
		t.Fatal(err)
	}
	cfg.LocalAPIEndpoint = kubeadmapi.APIEndpoint{AdvertiseAddress: "192.0.2.1", BindPort: 6443}
	cfg.Networking.PodSubnet = "10.244.0.0/16"
	cfg.KubernetesVersion = version
	return cfg
}

// kubeadmInit runs kubeadm's kube-proxy addon phase as `kubeadm init` does, ipvs mode, with the
// given patches directory ("" for none), on a fake API.
func kubeadmInit(t *testing.T, patches string) *fake.Clientset {
	t.Helper()
	cfg := kubeadmConfig(t, "v1.37.2")
	cfg.ComponentConfigs[componentconfigs.KubeProxyGroup].Get().(*kubeproxyv1alpha1.KubeProxyConfiguration).Mode = "ipvs"
	// upgrade reads every component config back, kubelet's too; kubeadm init's upload-config
	// phase would have written it.
	client := fake.NewClientset(&corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "kubelet-config", Namespace: "kube-system"},
		Data:       map[string]string{"kubelet": "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"},
	})
	if err := proxy.EnsureProxyAddon(&cfg.ClusterConfiguration, &cfg.LocalAPIEndpoint, client, patches, io.Discard, false); err != nil {
		t.Fatal(err)
	}
	return client
}

// kubeadmUpgrade does what `kubeadm upgrade apply v1.38.0` does to kube-proxy: it reads the
// component configs back from the cluster, then runs the addon phase again.
func kubeadmUpgrade(t *testing.T, client *fake.Clientset, patches string) {
	t.Helper()
	cfg := kubeadmConfig(t, "v1.38.0")
	if err := componentconfigs.FetchFromCluster(&cfg.ClusterConfiguration, client); err != nil {
		t.Fatal(err)
	}
	if err := proxy.EnsureProxyAddon(&cfg.ClusterConfiguration, &cfg.LocalAPIEndpoint, client, patches, io.Discard, false); err != nil {
		t.Fatal(err)
	}
}

func getConfigMap(t *testing.T, client *fake.Clientset, name string) *corev1.ConfigMap {
	t.Helper()
	cm, err := client.CoreV1().ConfigMaps("kube-system").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cm
}

func getDaemonSet(t *testing.T, client *fake.Clientset) *appsv1.DaemonSet {
	t.Helper()
	ds, err := client.AppsV1().DaemonSets("kube-system").Get(context.Background(), "kube-proxy", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// ourKubeProxy is the product's binary: KUBE_PROXY_OURS, or built from the repository.
func ourKubeProxy(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("KUBE_PROXY_OURS"); p != "" {
		return p
	}
	out := filepath.Join(t.TempDir(), "kube-proxy")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/kube-proxy")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=vendor -trimpath", "CGO_ENABLED=0", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building kube-proxy: %v\n%s", err, b)
	}
	return out
}

// forkSettings runs our kube-proxy on files as the DaemonSet's pod would see them and returns
// the fork's settings it resolved (its --write-config-to output, ipvs and iptables sections).
func forkSettings(t *testing.T, bin string, files map[string]string, args ...string) map[string]any {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "resolved.yaml")
	cmd := exec.Command(bin, append([]string{"--config=" + filepath.Join(dir, "config.conf"), "--write-config-to=" + out}, args...)...)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kube-proxy %q: %v\n%s", args, err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ IPVS, IPTables map[string]any }
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	return map[string]any{
		"protectedCIDRs":        doc.IPVS["protectedCIDRs"],
		"masqueradeRandomFully": doc.IPTables["masqueradeRandomFully"],
	}
}

// TestKubeadmUpgradeKeepsForkSettings: `kubeadm upgrade` rewrites config.conf from its typed
// KubeProxyConfiguration and the DaemonSet from its template. Settings in config.conf and an
// image set by hand are lost; settings in the kube-proxy-ipvs ConfigMap, read with
// --fork-config, and the image and mount of deploy/kubeadm-settings given to kubeadm as its
// patches directory, are kept.
func TestKubeadmUpgradeKeepsForkSettings(t *testing.T) {
	defaults := kubeadmapi.GetActiveTimeouts()
	saved := defaults.KubernetesAPICall
	defaults.KubernetesAPICall = &metav1.Duration{Duration: time.Second}
	t.Cleanup(func() { defaults.KubernetesAPICall = saved })
	bin := ourKubeProxy(t)
	want := map[string]any{"protectedCIDRs": []any{"192.0.2.10/32"}, "masqueradeRandomFully": "never"}
	ctx := context.Background()

	t.Run("settings in config.conf and the image set by hand are lost", func(t *testing.T) {
		client := kubeadmInit(t, "")
		cm := getConfigMap(t, client, "kube-proxy")
		conf := cm.Data["config.conf"]
		conf = strings.Replace(conf, "\nipvs:\n", "\nipvs:\n  protectedCIDRs: [192.0.2.10/32]\n", 1)
		conf = strings.Replace(conf, "\niptables:\n", "\niptables:\n  masqueradeRandomFully: never\n", 1)
		cm.Data["config.conf"] = conf
		if _, err := client.CoreV1().ConfigMaps("kube-system").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		ds := getDaemonSet(t, client)
		ds.Spec.Template.Spec.Containers[0].Image = ourImage
		if _, err := client.AppsV1().DaemonSets("kube-system").Update(ctx, ds, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		if got := forkSettings(t, bin, map[string]string{"config.conf": conf}); !equalYAML(got, want) {
			t.Fatalf("before the upgrade kube-proxy read %v, want %v", got, want)
		}

		kubeadmUpgrade(t, client, "")
		after := getConfigMap(t, client, "kube-proxy").Data["config.conf"]
		if strings.Contains(after, "protectedCIDRs") || strings.Contains(after, "masqueradeRandomFully") {
			t.Errorf("kubeadm kept the fork's fields; this test's premise is wrong:\n%s", after)
		}
		if !strings.Contains(after, "mode: ipvs") {
			t.Errorf("kubeadm lost mode: ipvs:\n%s", after)
		}
		if got := forkSettings(t, bin, map[string]string{"config.conf": after}); equalYAML(got, want) {
			t.Errorf("after the upgrade kube-proxy still read %v from config.conf", got)
		}
		if img := getDaemonSet(t, client).Spec.Template.Spec.Containers[0].Image; img != "registry.k8s.io/kube-proxy:v1.38.0" {
			t.Errorf("image after the upgrade %q, want upstream's", img)
		}
	})

	t.Run("settings in kube-proxy-ipvs and the patches directory are kept", func(t *testing.T) {
		patches := filepath.Join(repoRoot(t), "deploy", "kubeadm-settings")
		client := kubeadmInit(t, patches)
		var settings corev1.ConfigMap
		data, err := os.ReadFile(filepath.Join(patches, "kube-proxy-ipvs.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.UnmarshalStrict(data, &settings); err != nil {
			t.Fatal(err)
		}
		settings.Data["config.yaml"] = "ipvs:\n  protectedCIDRs: [192.0.2.10/32]\niptables:\n  masqueradeRandomFully: never\n"
		if _, err := client.CoreV1().ConfigMaps("kube-system").Create(ctx, &settings, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}

		kubeadmUpgrade(t, client, patches)
		ds := getDaemonSet(t, client)
		c := ds.Spec.Template.Spec.Containers[0]
		if c.Image != ourImage {
			t.Errorf("image after the upgrade %q, want %q", c.Image, ourImage)
		}
		// The pod's files: the flag's path must be the mounted ConfigMap's key.
		var flagPath string
		for _, a := range c.Command {
			if p, ok := strings.CutPrefix(a, "--fork-config="); ok {
				flagPath = p
			}
		}
		var mountPath string
		for _, m := range c.VolumeMounts {
			for _, v := range ds.Spec.Template.Spec.Volumes {
				if v.Name == m.Name && v.ConfigMap != nil && v.ConfigMap.Name == "kube-proxy-ipvs" {
					mountPath = m.MountPath
				}
			}
		}
		if flagPath == "" || mountPath == "" || filepath.Dir(flagPath) != mountPath {
			t.Fatalf("DaemonSet after the upgrade: --fork-config %q, kube-proxy-ipvs mounted at %q; command %q", flagPath, mountPath, c.Command)
		}
		for _, want := range []string{"--config=/var/lib/kube-proxy/config.conf", "--hostname-override=$(NODE_NAME)"} {
			if !contains(c.Command, want) {
				t.Errorf("kubeadm's %s lost from the command %q", want, c.Command)
			}
		}
		kept := getConfigMap(t, client, "kube-proxy-ipvs").Data[filepath.Base(flagPath)]
		conf := getConfigMap(t, client, "kube-proxy").Data["config.conf"]
		files := map[string]string{"config.conf": conf, "settings.yaml": kept}
		if got := forkSettings(t, bin, files, "--fork-config=settings.yaml"); !equalYAML(got, want) {
			t.Errorf("after the upgrade kube-proxy read %v, want %v", got, want)
		}
	})
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func equalYAML(a, b any) bool {
	x, err1 := yaml.Marshal(a)
	y, err2 := yaml.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}
