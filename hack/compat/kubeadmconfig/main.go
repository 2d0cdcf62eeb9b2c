// Command kubeadmconfig writes the kube-proxy config file (the kube-proxy ConfigMap's
// config.conf) exactly as kubeadm of the release it is built against writes it, for the
// KubeProxyConfiguration documents an operator commonly gives `kubeadm init --config`:
//
//	default.yaml          no KubeProxyConfiguration (kubeadm's own defaults)
//	ipvs.yaml             mode: ipvs, ipvs.strictARP: true (MetalLB's and kube-vip's instructions)
//	ipvs-gate-true.yaml   the same with featureGates: {KubeProxyIPVS: true}
//	ipvs-gate-false.yaml  the same with featureGates: {KubeProxyIPVS: false}
//
// It runs kubeadm's componentconfigs.FetchFromDocumentMap, Default and Marshal: the code
// `kubeadm init` runs before it writes the ConfigMap. hack/compat.sh builds it with each
// release's module file and stores the output in cmd/kube-proxy/app/testdata/kubeadm/v1.MINOR/.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/runtime/schema"
	kubeadmapi "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm"
	"k8s.io/kubernetes/cmd/kubeadm/app/componentconfigs"
)

const ipvsDoc = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: ipvs
ipvs:
  strictARP: true
`

var variants = []struct{ name, doc string }{
	{"default", ""},
	{"ipvs", ipvsDoc},
	{"ipvs-gate-true", ipvsDoc + "featureGates:\n  KubeProxyIPVS: true\n"},
	{"ipvs-gate-false", ipvsDoc + "featureGates:\n  KubeProxyIPVS: false\n"},
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: kubeadmconfig RELEASE OUTDIR")
		os.Exit(2)
	}
	release, out := os.Args[1], os.Args[2]
	if err := os.MkdirAll(out, 0o755); err != nil {
		fail(err)
	}
	gvk := schema.GroupVersionKind{Group: "kubeproxy.config.k8s.io", Version: "v1alpha1", Kind: "KubeProxyConfiguration"}
	for _, v := range variants {
		cfg := &kubeadmapi.ClusterConfiguration{
			Networking: kubeadmapi.Networking{PodSubnet: "10.244.0.0/16", ServiceSubnet: "10.96.0.0/12", DNSDomain: "cluster.local"},
		}
		if v.doc != "" {
			if err := componentconfigs.FetchFromDocumentMap(cfg, kubeadmapi.DocumentMap{gvk: []byte(v.doc)}); err != nil {
				fail(fmt.Errorf("%s: kubeadm %s refuses the document: %w", v.name, release, err))
			}
		}
		componentconfigs.Default(cfg, &kubeadmapi.APIEndpoint{AdvertiseAddress: "192.168.0.10", BindPort: 6443}, &kubeadmapi.NodeRegistrationOptions{})
		kp, ok := cfg.ComponentConfigs[componentconfigs.KubeProxyGroup]
		if !ok {
			fail(fmt.Errorf("%s: kubeadm %s made no kube-proxy config", v.name, release))
		}
		b, err := kp.Marshal()
		if err != nil {
			fail(err)
		}
		head := fmt.Sprintf("# kube-proxy config.conf as kubeadm %s writes it (hack/compat/kubeadmconfig, variant %s)\n", release, v.name)
		if err := os.WriteFile(filepath.Join(out, v.name+".yaml"), append([]byte(head), b...), 0o644); err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kubeadmconfig:", err)
	os.Exit(1)
}
