package framework

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/clientcmd"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	proxyconfigscheme "k8s.io/kubernetes/pkg/proxy/apis/config/scheme"
)

// The config.conf the lab's image container gets must be one kube-proxy's strict decoder takes
// whole (the lenient fallback would drop a misspelt field with only a log line), with the values
// the lab relies on.
func TestKubeadmKubeProxyConfigDecodes(t *testing.T) {
	obj, err := runtime.Decode(proxyconfigscheme.Codecs.UniversalDecoder(), []byte(KubeadmKubeProxyConfig()))
	if err != nil {
		t.Fatalf("strict decode: %v", err)
	}
	cfg, ok := obj.(*kubeproxyconfig.KubeProxyConfiguration)
	if !ok {
		t.Fatalf("decoded a %T", obj)
	}
	if cfg.Mode != "ipvs" || cfg.ClientConnection.Kubeconfig != KubeadmConfigDir+"/kubeconfig.conf" ||
		len(cfg.DetectLocal.ClusterCIDRs) != 1 || cfg.DetectLocal.ClusterCIDRs[0] != ClusterCIDR || cfg.Linux.Conntrack.MaxPerCore == nil || *cfg.Linux.Conntrack.MaxPerCore != 0 {
		t.Errorf("decoded %+v", cfg)
	}
	// The check can fail: a misspelt field is refused.
	bad := strings.Replace(KubeadmKubeProxyConfig(), "clusterCIDR:", "clusterCidr:", 1)
	if _, err := runtime.Decode(proxyconfigscheme.Codecs.UniversalDecoder(), []byte(bad)); err == nil {
		t.Error("a misspelt field decoded without an error")
	}
	kc, err := clientcmd.Load([]byte(KubeadmKubeconfig("https://10.0.2.100:6443")))
	if err != nil {
		t.Fatal(err)
	}
	if u := kc.AuthInfos["default"]; u == nil || u.TokenFile != ServiceAccountDir+"/token" {
		t.Errorf("kubeconfig.conf user: %+v", u)
	}
}
