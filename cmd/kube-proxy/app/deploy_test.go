package app_test

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	"sigs.k8s.io/yaml"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/forkconfig"
)

// TestDeployFilesLoad: the config files deploy/ ships load in our kube-proxy as they are, in
// ipvs mode, with the fork's defaults (the lab test applies the manifests themselves).
func TestDeployFilesLoad(t *testing.T) {
	deploy := filepath.Join("..", "..", "..", "deploy")
	data, err := os.ReadFile(filepath.Join(deploy, "kubeadm-settings", "kube-proxy-ipvs.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict(data, &cm); err != nil {
		t.Fatal(err)
	}
	settings := writeFile(t, "config.yaml", cm.Data["config.yaml"])
	opts, err := completeOurs(t, "--config="+filepath.Join(deploy, "standalone", "config.conf"), "--fork-config="+settings)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Config().Mode != kubeproxyconfig.ProxyModeIPVS {
		t.Errorf("deploy/standalone/config.conf: mode %q, want ipvs", opts.Config().Mode)
	}
	want := forkconfig.Default()
	want.ProtectedCIDRs, want.ExternalIPCIDRs = []string{}, []string{}
	if got := opts.ForkConfig(); !reflect.DeepEqual(got, want) {
		t.Errorf("deploy/kubeadm-settings's settings: %+v, want the defaults %+v", got, want)
	}
}
