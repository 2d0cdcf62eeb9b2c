package framework

// The files a kubeadm cluster gives the kube-proxy DaemonSet: the ConfigMap kube-system/kube-proxy
// (config.conf, kubeconfig.conf) and the service account token kubelet projects into the pod.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Where kubeadm's DaemonSet mounts them in the container.
const (
	KubeadmConfigDir  = "/var/lib/kube-proxy"
	ServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"
)

// KubeadmKubeProxyConfig is config.conf as kubeadm writes it (its KubeProxyConfiguration struct
// marshalled: every field, zero values included), with mode ipvs and the lab's values where the
// lab differs from a kubeadm default:
//   - clusterCIDR: the lab's pod network (kubeadm copies networking.podSubnet);
//   - conntrack maxPerCore, tcpEstablishedTimeout, tcpCloseWaitTimeout 0: kube-proxy leaves the
//     guest-wide conntrack sysctls alone (the flags ProxyArgs gives the other proxies);
//   - oomScoreAdj 0, logging verbosity 2: the same as ProxyArgs.
//
// metricsBindAddress and healthzBindAddress stay "" (kubeadm's): kube-proxy's defaults,
// 127.0.0.1:10249 and 0.0.0.0:10256, are where the framework reads them.
func KubeadmKubeProxyConfig() string {
	return `apiVersion: kubeproxy.config.k8s.io/v1alpha1
bindAddress: 0.0.0.0
bindAddressHardFail: false
clientConnection:
  acceptContentTypes: ""
  burst: 0
  contentType: ""
  kubeconfig: ` + KubeadmConfigDir + `/kubeconfig.conf
  qps: 0
clusterCIDR: ` + ClusterCIDR + `
configSyncPeriod: 0s
conntrack:
  maxPerCore: 0
  min: null
  tcpBeLiberal: false
  tcpCloseWaitTimeout: 0s
  tcpEstablishedTimeout: 0s
  udpStreamTimeout: 0s
  udpTimeout: 0s
detectLocal:
  bridgeInterface: ""
  interfaceNamePrefix: ""
detectLocalMode: ""
enableProfiling: false
healthzBindAddress: ""
hostnameOverride: ""
iptables:
  localhostNodePorts: null
  masqueradeAll: false
  masqueradeBit: null
  minSyncPeriod: 0s
  syncPeriod: 0s
ipvs:
  excludeCIDRs: null
  minSyncPeriod: 0s
  scheduler: ""
  strictARP: false
  syncPeriod: 0s
  tcpFinTimeout: 0s
  tcpTimeout: 0s
  udpTimeout: 0s
kind: KubeProxyConfiguration
logging:
  flushFrequency: 0
  options:
    json:
      infoBufferSize: "0"
    text:
      infoBufferSize: "0"
  verbosity: 2
metricsBindAddress: ""
mode: ipvs
nftables:
  masqueradeAll: false
  masqueradeBit: null
  minSyncPeriod: 0s
  syncPeriod: 0s
nodePortAddresses: null
oomScoreAdj: 0
portRange: ""
showHiddenMetricsForVersion: ""
winkernel:
  enableDSR: false
  forwardHealthCheckVip: false
  networkName: ""
  rootHnsEndpointName: ""
  sourceVip: ""
`
}

// KubeadmKubeconfig is kubeconfig.conf as kubeadm writes it: the control plane's address, the
// service account's CA and token files.
func KubeadmKubeconfig(server string) string {
	return `apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority: ` + ServiceAccountDir + `/ca.crt
    server: ` + server + `
  name: default
contexts:
- context:
    cluster: default
    namespace: default
    user: default
  name: default
current-context: default
users:
- name: default
  user:
    tokenFile: ` + ServiceAccountDir + `/token
`
}

// WriteKubeadmFiles writes, under dir, config/ (config.conf, kubeconfig.conf: the ConfigMap) and
// serviceaccount/ (ca.crt, namespace, token: what kubelet projects for the ServiceAccount
// kube-system/kube-proxy). The token comes from the apiserver's TokenRequest API, as kubelet's
// does; the server and CA are those of the lab kubeconfig.
func WriteKubeadmFiles(ctx context.Context, cs kubernetes.Interface, labKubeconfig, dir string) (configDir, saDir string, err error) {
	kc, err := clientcmd.LoadFromFile(labKubeconfig)
	if err != nil {
		return "", "", err
	}
	cur := kc.Contexts[kc.CurrentContext]
	if cur == nil || kc.Clusters[cur.Cluster] == nil {
		return "", "", fmt.Errorf("%s: no current context's cluster", labKubeconfig)
	}
	cluster := kc.Clusters[cur.Cluster]
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy", Namespace: "kube-system"}}
	if _, err := cs.CoreV1().ServiceAccounts("kube-system").Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", "", fmt.Errorf("service account kube-system/kube-proxy: %w", err)
	}
	exp := int64(3600)
	tr, err := cs.CoreV1().ServiceAccounts("kube-system").CreateToken(ctx, "kube-proxy",
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		return "", "", fmt.Errorf("token for kube-system/kube-proxy: %w", err)
	}
	configDir, saDir = filepath.Join(dir, "config"), filepath.Join(dir, "serviceaccount")
	files := map[string]string{
		filepath.Join(configDir, "config.conf"):     KubeadmKubeProxyConfig(),
		filepath.Join(configDir, "kubeconfig.conf"): KubeadmKubeconfig(cluster.Server),
		filepath.Join(saDir, "ca.crt"):              string(cluster.CertificateAuthorityData),
		filepath.Join(saDir, "namespace"):           "kube-system",
		filepath.Join(saDir, "token"):               tr.Status.Token,
	}
	for p, data := range files {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", "", err
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			return "", "", err
		}
	}
	return configDir, saDir, nil
}
