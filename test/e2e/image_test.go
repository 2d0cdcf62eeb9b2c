package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/framework"
	corev1 "k8s.io/api/core/v1"
)

// TestImage (runs once): kube-proxy from the image `make lab-image` builds (unpacked by hack/e2e.sh:
// E2E_IMAGE_ROOTFS), run by runc as kubeadm's DaemonSet runs it (framework.StartImageProxy), replaces
// upstream's binary on two nodes of a running cluster:
//
//   - node1 (upstream on the nft backend, Debian's default): a live swap with an established
//     connection through a ClusterIP, which keeps echoing; IPVS state and kube-ipvs0 read back
//     identical (no flush); Services answered across nodes through node1 afterwards;
//   - node2 (upstream on the legacy backend): the image's kube-proxy keeps using legacy: the
//     rule only our kube-proxy writes (the VXLAN masquerade without --random-fully) appears in
//     legacy's nat table, nft holds no KUBE-* chain, and the image's iptables-wrapper links
//     iptables to xtables-legacy-multi.
//
// Each time the guest's /proc says the process runs from the container's root filesystem, in the
// node's network namespace, with every capability and the DaemonSet's mounts.
func TestImage(t *testing.T) {
	if skipReason != "" {
		t.Skip(skipReason)
	}
	rootfs := os.Getenv("E2E_IMAGE_ROOTFS")
	if rootfs == "" {
		t.Skip("E2E_IMAGE_ROOTFS not set (hack/e2e.sh unpacks the image make lab-image builds)")
	}
	up, ok := cfg.FindImpl("upstream")
	if !ok {
		t.Skip("needs upstream's kube-proxy (E2E_IMPLS): the swap starts from it")
	}
	if r := up.Unavailable(); r != "" {
		t.Skip(r)
	}
	if _, err := exec.LookPath(framework.ContainerRuntime); err != nil {
		t.Fatalf("%s: %v (hack/install-deps.sh installs it)", framework.ContainerRuntime, err)
	}
	im, err := framework.LoadContainerImage(rootfs)
	if err != nil {
		t.Fatalf("the unpacked image: %v", err)
	}
	t.Logf("image: linux/amd64 manifest %s, unpacked in %s", im.Manifest, im.Rootfs)
	upLegacy, err := framework.LegacyIptables(up)
	if err != nil {
		t.Fatal(err)
	}
	c, skip := framework.StartClusterPerNode(t, cfg, client, up.WithPrefix("i"), map[int]framework.Impl{2: upLegacy})
	if skip != "" {
		t.Skip(skip)
	}
	ctx := context.Background()
	node1, node2, node3 := c.Node(1), c.Node(2), c.Node(3)

	ns := c.Namespace(t)
	backend := c.AddPod(t, 3, "img-backend", 8080)
	cl := c.AddPod(t, 1, "img-client", 9999)
	svc := c.CreateService(t, ns, "echo", []framework.ServicePort{
		{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 80, Target: 8080},
		{Name: "udp", Protocol: corev1.ProtocolUDP, Port: 80, Target: 8080},
	}, []*framework.Pod{backend}, func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort })
	addr := net.JoinHostPort(svc.Spec.ClusterIP, "80")
	nodePort := func(n *framework.Node) string {
		return net.JoinHostPort(n.IP.String(), strconv.Itoa(int(svc.Spec.Ports[0].NodePort)))
	}

	// Before: each node's rules are in the backend its upstream kube-proxy used, and none is
	// ours (so the VXLAN rule found after the swap was written by the image).
	expectBackend(t, c, node1, "nft", false)
	expectBackend(t, c, node2, "legacy", false)

	c.EventuallyEcho(t, cl.NS, "tcp", addr, expectFrom(backend.Name, cl.IP.String()))
	conn, err := framework.OpenStream(cl.NS, addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	before := c.StableIPVSCounted(t, node1, addr)

	startImage := func(n *framework.Node) (*framework.Proxy, error) {
		return framework.StartImageProxy(ctx, im, n, client, cfg.Kubeconfig, c.LogDir)
	}

	// node1: the live swap, upstream (nft) -> the image.
	p1 := c.ReplaceProxyWith(t, 1, "image (runc)", startImage)
	expectFromImage(t, p1, node1)
	if err := conn.Ping("after-swap-to-image"); err != nil {
		t.Fatalf("swap to the image: established connection broke: %v", err)
	}
	for _, proto := range []string{"tcp", "udp"} {
		c.EventuallyEcho(t, cl.NS, proto, addr, expectFrom(backend.Name, cl.IP.String()))
	}
	c.EventuallyEcho(t, c.Net.Client, "tcp", nodePort(node1), expectFromNode(backend.Name, node1))
	after := c.StableIPVS(t, node1)
	if d := before.Diff(after); len(d) > 0 {
		c.DumpState(t)
		t.Fatalf("swap to the image: node1's kernel state changed:\n%s", strings.Join(d, "\n"))
	}
	t.Logf("node1: %d virtual servers, kube-ipvs0 %v identical after the swap; connection to %s still echoes",
		len(after.Services), after.DummyAddrs, conn.Reply.Pod)
	expectBackend(t, c, node1, "nft", true)
	expectWrapperChose(t, p1, "nft")

	// node2: upstream on legacy -> the image, which stays on legacy.
	p2 := c.ReplaceProxyWith(t, 2, "image (runc)", startImage)
	expectFromImage(t, p2, node2)
	expectBackend(t, c, node2, "legacy", true)
	expectWrapperChose(t, p2, "legacy")
	c.EventuallyEcho(t, c.Net.Client, "tcp", nodePort(node2), expectFromNode(backend.Name, node2))
	// node3 still runs upstream (nft) and answers: the image on its neighbours broke nothing.
	c.EventuallyEcho(t, c.Net.Client, "tcp", nodePort(node3), expectFromNode(backend.Name, node3))
	if err := conn.Ping("at-the-end"); err != nil {
		t.Fatalf("established connection broke: %v", err)
	}
}

// expectBackend reads node's rules from both iptables backends and fails unless the KUBE-*
// chains are all in backend (with the nat table's KUBE-POSTROUTING among them), none in the
// other one, and our VXLAN masquerade rule is there exactly when ours is true.
func expectBackend(t *testing.T, c *framework.Cluster, node *framework.Node, backend string, ours bool) {
	t.Helper()
	other := map[string]string{"nft": "legacy", "legacy": "nft"}[backend]
	c.Eventually(t, fmt.Sprintf("%s: KUBE-* chains in %s only, our VXLAN rule %v", node.Name, backend, ours), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		in, err := node.IptablesSave(ctx, backend)
		if err != nil {
			return err
		}
		out, err := node.IptablesSave(ctx, other)
		if err != nil {
			return err
		}
		if chains := framework.KubeChains(in); !slices.Contains(chains, "nat/KUBE-POSTROUTING") {
			return fmt.Errorf("%s holds %v, no nat/KUBE-POSTROUTING", backend, chains)
		}
		if chains := framework.KubeChains(out); len(chains) > 0 {
			return fmt.Errorf("%s holds KUBE-* chains too: %v", other, chains)
		}
		if got := strings.Contains(in, vxlanComment); got != ours {
			return fmt.Errorf("%s: our VXLAN masquerade rule present=%v, want %v", backend, got, ours)
		}
		return nil
	})
}

// vxlanComment is the comment of the rule only our kube-proxy writes (pkg/proxy/iptables).
const vxlanComment = "kube-proxy-ipvs VXLAN traffic requiring SNAT without random-fully"

// expectFromImage reads back from the guest's /proc that p's kube-proxy runs from its
// container's root filesystem, in node's network namespace, as kubeadm's DaemonSet runs it.
func expectFromImage(t *testing.T, p *framework.Proxy, node *framework.Node) {
	t.Helper()
	pr, err := p.Container.InspectProcess(node)
	if err != nil {
		t.Fatalf("%s: %v", node.Name, err)
	}
	want := []string{"/usr/local/bin/kube-proxy", "--config=/var/lib/kube-proxy/config.conf", "--hostname-override=" + node.Name}
	if !slices.Equal(pr.Cmdline, want) {
		t.Errorf("%s: container process runs %q, want %q", node.Name, pr.Cmdline, want)
	}
	last, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(last)))
	if all := fmt.Sprintf("%016x", uint64(1)<<(n+1)-1); pr.CapEff != all {
		t.Errorf("%s: effective capabilities %s, want all (%s): privileged", node.Name, pr.CapEff, all)
	}
	for dir, mode := range map[string]string{"/run/xtables.lock": "rw", "/lib/modules": "ro",
		framework.KubeadmConfigDir: "ro", framework.ServiceAccountDir: "ro"} {
		opts, ok := pr.Mounts[dir]
		if dir == "/lib/modules" { // the image's /lib is a link to usr/lib: runc mounts there
			if opts, ok = pr.Mounts["/usr/lib/modules"]; !ok {
				opts, ok = pr.Mounts["/lib/modules"]
			}
		}
		if !ok {
			t.Errorf("%s: no mount at %s in the container (%d mounts)", node.Name, dir, len(pr.Mounts))
		} else if !slices.Contains(strings.Split(opts, ","), mode) {
			t.Errorf("%s: %s mounted %s, want %s", node.Name, dir, opts, mode)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%s: pid %d runs %s from %s (its /proc/PID/exe and root are the container's), in %s, CapEff %s",
		node.Name, pr.PID, pr.Cmdline[0], p.Container.Rootfs, node.Path(), pr.CapEff)
}

// expectWrapperChose reads which backend the image's iptables-wrapper linked iptables to, in the
// container's own root filesystem.
func expectWrapperChose(t *testing.T, p *framework.Proxy, backend string) {
	t.Helper()
	for _, n := range []string{"iptables", "iptables-save", "iptables-restore"} {
		got, err := os.Readlink(p.Container.Rootfs + "/usr/sbin/" + n)
		if err != nil {
			t.Fatal(err)
		}
		if want := "xtables-" + backend + "-multi"; got != want {
			t.Fatalf("%s: the image's %s links to %s, want %s", p.Node.Name, n, got, want)
		}
	}
	t.Logf("%s: the image's iptables-wrapper chose %s", p.Node.Name, backend)
}
