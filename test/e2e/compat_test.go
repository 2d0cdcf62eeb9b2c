package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/framework"
)

// TestCompat is make compat's check (hack/compat.sh, docs/compatibility.md), once per
// apiserver release: our kube-proxy, started from each IPVS config file kubeadm of that release
// writes (E2E_COMPAT_CONFIGS: ipvs*.yaml, featureGates KubeProxyIPVS unset, true and false),
// serves a ClusterIP, a NodePort and a LoadBalancer Service (an ExternalName Service exists beside
// them) and follows a change of endpoints. E2E_COMPAT_RELEASE is the release the apiserver must
// report. Skipped outside a compat run.
func TestCompat(t *testing.T) {
	if skipReason != "" {
		t.Skip(skipReason)
	}
	dir, release := os.Getenv("E2E_COMPAT_CONFIGS"), os.Getenv("E2E_COMPAT_RELEASE")
	if dir == "" || release == "" {
		t.Skip("E2E_COMPAT_CONFIGS / E2E_COMPAT_RELEASE not set: run by hack/compat.sh (make compat)")
	}
	sv, err := client.Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("apiserver version: %v", err)
	}
	if sv.GitVersion != release {
		t.Fatalf("the apiserver reports %s, want %s", sv.GitVersion, release)
	}
	t.Logf("compat: apiserver %s (%s)", sv.GitVersion, sv.Platform)
	files, err := filepath.Glob(filepath.Join(dir, "ipvs*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no kubeadm ipvs configs in %s (%v)", dir, err)
	}
	sort.Strings(files)
	impl, ok := cfg.FindImpl("ours")
	if !ok {
		t.Fatal("E2E_IMPLS must include ours")
	}
	c, skip := framework.StartCluster(t, cfg, client, impl)
	if skip != "" {
		t.Fatal(skip)
	}

	const lbVIP = "192.168.100.20"
	ns := c.Namespace(t)
	b1, b2 := c.AddPod(t, 2, "compat-b1", 8080), c.AddPod(t, 3, "compat-b2", 8080)
	clientPod := c.AddPod(t, 1, "compat-client", 9999)
	port := []framework.ServicePort{{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 80, Target: 8080}}
	both := []*framework.Pod{b1, b2}
	cip := c.CreateService(t, ns, "cip", port, both, nil)
	np := c.CreateService(t, ns, "np", port, both, func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort })
	lb := c.CreateService(t, ns, "lb", port, both, func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeLoadBalancer })
	lb = c.SetLoadBalancerIngress(t, lb, lbVIP)
	c.CreateService(t, ns, "ext", nil, nil, func(s *corev1.Service) {
		s.Spec.Type, s.Spec.ExternalName = corev1.ServiceTypeExternalName, "example.invalid"
	})
	c.Net.Client.AddRoute(t, lbVIP, c.Node(1).IP)
	node1 := c.Node(1)
	cipAddr := net.JoinHostPort(cip.Spec.ClusterIP, "80")
	npAddr := net.JoinHostPort(node1.IP.String(), fmt.Sprint(np.Spec.Ports[0].NodePort))
	lbAddr := net.JoinHostPort(lbVIP, "80")
	anyOf := func(pods ...*framework.Pod) func(framework.Reply) error {
		return func(r framework.Reply) error {
			for _, p := range pods {
				if r.Pod == p.Name {
					return nil
				}
			}
			return fmt.Errorf("answered by %q", r.Pod)
		}
	}

	for _, file := range files {
		variant := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(variant, func(t *testing.T) {
			conf := compatConfig(t, file, cfg.Kubeconfig)
			c.RestartProxies(t, c.Net.Nodes, nil, "--config="+conf)
			for _, p := range c.Proxies {
				if p.Exited() {
					t.Fatalf("kube-proxy on %s exited with %s (log %s)", p.Node.Name, variant, p.LogPath)
				}
			}
			c.EventuallyEcho(t, clientPod.NS, "tcp", cipAddr, anyOf(b1, b2))
			c.EventuallyEcho(t, c.Net.Client, "tcp", npAddr, anyOf(b1, b2))
			c.EventuallyEcho(t, c.Net.Client, "tcp", lbAddr, anyOf(b1, b2))
			expectVirtualServer(t, c, node1, cip.Spec.ClusterIP, 80, "tcp", ep(b1.IP, 8080), ep(b2.IP, 8080))
			expectVirtualServer(t, c, node1, lbVIP, 80, "tcp", ep(b1.IP, 8080), ep(b2.IP, 8080))
			t.Logf("%s: ClusterIP %s, NodePort %s, LoadBalancer %s served over IPVS", variant, cipAddr, npAddr, lbAddr)

			// A change: b2 leaves every Service, then comes back.
			for _, svc := range []*corev1.Service{cip, np, lb} {
				c.SetEndpoints(t, svc, []*framework.Pod{b1})
			}
			c.Eventually(t, "b2 removed from the virtual servers", func() error {
				return virtualServerMismatch(c, node1, cip.Spec.ClusterIP, 80, "tcp", ep(b1.IP, 8080))
			})
			for i := 0; i < 4; i++ {
				c.EventuallyEcho(t, c.Net.Client, "tcp", npAddr, anyOf(b1))
			}
			for _, svc := range []*corev1.Service{cip, np, lb} {
				c.SetEndpoints(t, svc, both)
			}
			c.Eventually(t, "b2 back in the virtual servers", func() error {
				return virtualServerMismatch(c, node1, lbVIP, 80, "tcp", ep(b1.IP, 8080), ep(b2.IP, 8080))
			})
		})
	}
}

// compatConfig writes kubeadm's file with what differs between a kubeadm node and the lab: the
// kubeconfig path (kubeadm's /var/lib/kube-proxy/kubeconfig.conf is a mounted Secret) and
// conntrack.maxPerCore 0 (the lab's flags keep kube-proxy from resizing the guest-wide
// conntrack table; kubeadm leaves it null, the default 32768).
func compatConfig(t *testing.T, file, kubeconfig string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, r := range [][2]string{
		{"kubeconfig: /var/lib/kube-proxy/kubeconfig.conf", "kubeconfig: " + kubeconfig},
		{"maxPerCore: null", "maxPerCore: 0"},
	} {
		if !strings.Contains(s, r[0]) {
			t.Fatalf("%s has no %q: kubeadm's file changed, adapt compatConfig", file, r[0])
		}
		s = strings.Replace(s, r[0], r[1], 1)
	}
	out := filepath.Join(t.TempDir(), filepath.Base(file))
	if cfg.Artifacts != "" {
		out = filepath.Join(cfg.Artifacts, "compat-"+filepath.Base(file))
	}
	if err := os.WriteFile(out, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}
