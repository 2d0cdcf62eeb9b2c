package framework

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	libipvs "github.com/moby/ipvs"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Config is what the e2e binary needs from its environment (set by hack/e2e.sh; PASSed into the
// guest by hack/lab/run-in-guest.sh, which forwards every E2E_* and KUBE_PROXY_* variable).
type Config struct {
	Kubeconfig string // E2E_KUBECONFIG: kubeconfig whose server the guest can reach (10.0.2.100:PORT)
	EchoServer string // E2E_ECHOSERVER: static echoserver binary
	Artifacts  string // E2E_ARTIFACTS: where logs go (the runner's OUT share); default a temp dir
	Nodes      int    // E2E_NODES (default 3)
	Impls      []Impl // KUBE_PROXY_UPSTREAM, KUBE_PROXY_OURS (E2E_IMPLS restricts: "upstream,ours")
	Timeout    time.Duration
	// UpstreamForkOnly (E2E_UPSTREAM=fork): upstream runs only the scenarios of the fork's fixes
	// (named Fork*), which assert upstream's failure; every other scenario runs on ours alone.
	// Upstream's syncs take 20-80 s in the emulated guest, so its run of the scenarios that both
	// implementations pass is most of the suite's time; CI (make test) runs this way.
	UpstreamForkOnly bool
}

// Impl is a kube-proxy implementation under test.
type Impl struct {
	Name   string   // "upstream" or "ours"
	Binary string   // path; "" = not available
	prefix string   // short netns/interface name prefix
	Env    []string // added to the environment of its processes (LegacyIptables)
}

// LoadConfig reads the environment; ok is false (with the reason) when not inside the lab.
func LoadConfig() (cfg Config, reason string) {
	cfg.Kubeconfig = os.Getenv("E2E_KUBECONFIG")
	cfg.EchoServer = os.Getenv("E2E_ECHOSERVER")
	cfg.Artifacts = os.Getenv("E2E_ARTIFACTS")
	cfg.Nodes = 3
	cfg.Timeout = 120 * time.Second // under TCG emulation everything is 5-20x slower than native
	if v := os.Getenv("E2E_SYNC_TIMEOUT"); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			cfg.Timeout = d
		}
	}
	if cfg.Kubeconfig == "" {
		return cfg, "E2E_KUBECONFIG not set: the e2e tests run inside the QEMU lab, via hack/e2e.sh"
	}
	if os.Geteuid() != 0 {
		return cfg, "needs root (network namespaces)"
	}
	if _, err := os.Stat("/proc/net/ip_vs"); err != nil {
		_ = exec0("modprobe", "ip_vs")
		if _, err := os.Stat("/proc/net/ip_vs"); err != nil {
			return cfg, "kernel without ip_vs: run inside hack/lab/run-in-guest.sh"
		}
	}
	if cfg.EchoServer == "" {
		return cfg, "E2E_ECHOSERVER not set"
	}
	want := map[string]bool{"upstream": true, "ours": true}
	if v := os.Getenv("E2E_IMPLS"); v != "" {
		want = map[string]bool{}
		for _, s := range strings.Split(v, ",") {
			want[strings.TrimSpace(s)] = true
		}
	}
	for _, im := range []Impl{
		{Name: "upstream", Binary: os.Getenv("KUBE_PROXY_UPSTREAM"), prefix: "u"},
		{Name: "ours", Binary: os.Getenv("KUBE_PROXY_OURS"), prefix: "o"},
	} {
		if want[im.Name] {
			cfg.Impls = append(cfg.Impls, im)
		}
	}
	return cfg, ""
}

// ParseUpstreamScope reads E2E_UPSTREAM: "" or "all" (upstream runs every scenario) or "fork"
// (Config.UpstreamForkOnly). Anything else is an error, not a silent skip of scenarios.
func ParseUpstreamScope(v string) (forkOnly bool, err error) {
	switch v {
	case "", "all":
		return false, nil
	case "fork":
		return true, nil
	}
	return false, fmt.Errorf("E2E_UPSTREAM=%q: want all or fork", v)
}

func exec0(name string, args ...string) error {
	_, err := execCommand(name, args...).CombinedOutput()
	return err
}

// Unavailable says why the implementation cannot run (empty when it can be tried).
func (im Impl) Unavailable() string {
	if im.Binary == "" {
		return fmt.Sprintf("%s kube-proxy: no binary given (KUBE_PROXY_%s)", im.Name, strings.ToUpper(im.Name))
	}
	if st, err := os.Stat(im.Binary); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Sprintf("%s kube-proxy: %s is absent or not executable", im.Name, im.Binary)
	}
	return ""
}

// ErrUnsupported: the binary runs but says it cannot do --proxy-mode=ipvs (yet).
var ErrUnsupported = errors.New("proxy mode not supported by this binary")

var unsupportedRE = regexp.MustCompile(`(?i)(does not include the ipvs|ipvs[^\n]*(not (yet )?(supported|implemented|built|available))|unknown proxy mode|invalid value "ipvs")`)

// Cluster is one proxy implementation running on every node of a fresh lab network, against the
// shared apiserver. Scenarios create Services and EndpointSlices as the control plane would.
type Cluster struct {
	Impl    Impl
	Client  kubernetes.Interface
	Net     *Network
	Proxies []*Proxy
	Cfg     Config
	LogDir  string
}

// NewClient builds a clientset from the kubeconfig.
func NewClient(kubeconfig string) (kubernetes.Interface, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	rc.QPS, rc.Burst = 100, 200
	rc.Timeout = 30 * time.Second
	return kubernetes.NewForConfig(rc)
}

// EnsureNodes creates (or refreshes) the Node objects a kubelet would have registered: name,
// InternalIP + Hostname addresses, podCIDR(s), Ready condition.
func EnsureNodes(ctx context.Context, cs kubernetes.Interface, n int) error {
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("node%d", i)
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
				"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}},
			Spec: corev1.NodeSpec{PodCIDR: PodCIDR(i).String(), PodCIDRs: []string{PodCIDR(i).String()}},
		}
		cur, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			cur, err = cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		}
		if err != nil {
			return fmt.Errorf("node %s: %w", name, err)
		}
		cur.Status.Addresses = []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: NodeIP(i).String()},
			{Type: corev1.NodeHostName, Address: name},
		}
		now := metav1.Now()
		cur.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
			Reason: "E2E", LastHeartbeatTime: now, LastTransitionTime: now}}
		if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("node %s status: %w", name, err)
		}
	}
	return nil
}

// StartCluster builds a fresh network (nodes, client) and starts impl's kube-proxy on every node.
// When the implementation is unavailable or reports it cannot do IPVS, it returns nil and the
// reason to skip (the caller skips every scenario with it, so the report still lists them).
func StartCluster(t *testing.T, cfg Config, cs kubernetes.Interface, impl Impl) (*Cluster, string) {
	t.Helper()
	return StartClusterPerNode(t, cfg, cs, impl, nil)
}

// StartClusterPerNode is StartCluster with another implementation on some nodes (perNode: node
// number -> implementation, for a node whose kube-proxy runs with another iptables backend).
func StartClusterPerNode(t *testing.T, cfg Config, cs kubernetes.Interface, impl Impl, perNode map[int]Impl) (*Cluster, string) {
	t.Helper()
	if r := impl.Unavailable(); r != "" {
		return nil, r
	}
	logDir := filepath.Join(cfg.Artifacts, impl.Name)
	if cfg.Artifacts == "" {
		logDir = t.TempDir()
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	nw, err := NewNetwork(impl.prefix, cfg.Nodes, cfg.EchoServer, logDir)
	if err != nil {
		t.Fatalf("network: %v", err)
	}
	c := &Cluster{Impl: impl, Client: cs, Net: nw, Cfg: cfg, LogDir: logDir}
	t.Cleanup(c.stop)
	t.Logf("network with %d nodes ready in %v", cfg.Nodes, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	for i, n := range nw.Nodes {
		im := impl
		if o, ok := perNode[i+1]; ok {
			im = o
		}
		p, err := StartProxy(im, n, cfg.Kubeconfig, logDir)
		if err != nil {
			t.Fatalf("%s: %v", n.Name, err)
		}
		c.Proxies = append(c.Proxies, p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
	defer cancel()
	for _, p := range c.Proxies {
		if err := p.WaitRunning(ctx); err != nil {
			if errors.Is(err, ErrUnsupported) && impl.Name != "upstream" { // upstream must work
				return nil, fmt.Sprintf("%s kube-proxy (%s) does not support --proxy-mode=ipvs yet: %v", impl.Name, impl.Binary, err)
			}
			t.Fatalf("%s: %v", p.Node.Name, err)
		}
	}
	t.Logf("%s kube-proxy running (IPVS) on %d nodes in %v", impl.Name, len(c.Proxies), time.Since(start).Round(time.Millisecond))
	return c, ""
}

func (c *Cluster) stop() {
	for _, p := range c.Proxies {
		p.Stop()
	}
	c.Net.Close()
}

// Node returns node i (1-based).
func (c *Cluster) Node(i int) *Node { return c.Net.Nodes[i-1] }

// Namespace creates a namespace for one scenario; its Services and EndpointSlices are deleted at
// the end of the test (namespaces themselves are left: no namespace controller runs).
func (c *Cluster) Namespace(t *testing.T) string {
	t.Helper()
	name := strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-"))
	name = strings.Trim(name, "-")
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-")
	}
	return c.NamespaceNamed(t, name)
}

// NamespaceNamed is Namespace with a name of the scenario's choosing (a DNS label), for a
// scenario in which the namespaces' order matters; the same cleanup.
func (c *Cluster) NamespaceNamed(t *testing.T, name string) string {
	t.Helper()
	ctx := context.Background()
	_, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_ = c.Client.DiscoveryV1().EndpointSlices(name).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
		svcs, err := c.Client.CoreV1().Services(name).List(ctx, metav1.ListOptions{})
		if err == nil {
			for _, s := range svcs.Items {
				_ = c.Client.CoreV1().Services(name).Delete(ctx, s.Name, metav1.DeleteOptions{})
			}
		}
	})
	return name
}

// AddPod starts an echoserver pod behind node i.
func (c *Cluster) AddPod(t *testing.T, node int, name string, ports ...int) *Pod {
	t.Helper()
	p, err := c.Node(node).AddPod(name, ports...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n := p.Node
		n.mu.Lock()
		for i, q := range n.pods {
			if q == p {
				n.pods = append(n.pods[:i], n.pods[i+1:]...)
				break
			}
		}
		n.mu.Unlock()
		p.Stop()
	})
	return p
}

// ServicePort describes one port of a Service and its target on the pods.
type ServicePort struct {
	Name     string
	Protocol corev1.Protocol
	Port     int32
	Target   int32
	NodePort int32
}

// CreateService creates a Service (spec tweaks via mutate) and an EndpointSlice listing pods as
// ready endpoints, as the endpointslice controller would.
func (c *Cluster) CreateService(t *testing.T, ns, name string, ports []ServicePort, pods []*Pod, mutate func(*corev1.Service)) *corev1.Service {
	t.Helper()
	ctx := context.Background()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP}}
	for _, p := range ports {
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: p.Name, Protocol: p.Protocol, Port: p.Port,
			TargetPort: intstr.FromInt32(p.Target), NodePort: p.NodePort})
	}
	if mutate != nil {
		mutate(svc)
	}
	svc, err := c.Client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("service %s/%s: %v", ns, name, err)
	}
	c.SetEndpoints(t, svc, pods)
	return svc
}

// SetEndpoints creates or replaces the Service's EndpointSlice with pods (all ready).
func (c *Cluster) SetEndpoints(t *testing.T, svc *corev1.Service, pods []*Pod) {
	t.Helper()
	ctx := context.Background()
	ready := true
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: svc.Name + "-e2e", Namespace: svc.Namespace, Labels: map[string]string{
			discoveryv1.LabelServiceName: svc.Name,
			discoveryv1.LabelManagedBy:   "e2e.kube-proxy-ipvs",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for _, sp := range svc.Spec.Ports {
		name, proto, port := sp.Name, sp.Protocol, sp.TargetPort.IntVal
		slice.Ports = append(slice.Ports, discoveryv1.EndpointPort{Name: &name, Protocol: &proto, Port: &port})
	}
	for _, p := range pods {
		nodeName := p.Node.Name
		slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{p.IP.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready},
			NodeName:   &nodeName,
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: svc.Namespace, Name: p.Name},
		})
	}
	cli := c.Client.DiscoveryV1().EndpointSlices(svc.Namespace)
	cur, err := cli.Get(ctx, slice.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = cli.Create(ctx, slice, metav1.CreateOptions{})
	case err == nil:
		slice.ResourceVersion = cur.ResourceVersion
		_, err = cli.Update(ctx, slice, metav1.UpdateOptions{})
	}
	if err != nil {
		t.Fatalf("endpointslice %s/%s: %v", svc.Namespace, slice.Name, err)
	}
}

// Reply is what echoserver answered.
type Reply struct {
	Pod    string // pod name
	Client string // client address as the pod saw it (ip:port)
	Raw    string
}

// ClientIP is the address part of Client.
func (r Reply) ClientIP() string {
	h, _, err := net.SplitHostPort(r.Client)
	if err != nil {
		return r.Client
	}
	return h
}

// Echo sends one request from ns to addr over proto ("tcp"/"udp") and parses echoserver's reply.
func Echo(ns *NS, proto, addr string, timeout time.Duration) (Reply, error) {
	c, err := ns.Dial(proto, addr, timeout)
	if err != nil {
		return Reply{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if proto == "udp" {
		if _, err := c.Write([]byte("ping\n")); err != nil {
			return Reply{}, err
		}
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		return Reply{}, err
	}
	raw := string(buf[:n])
	line := strings.SplitN(raw, "\n", 2)[0]
	r := Reply{Raw: raw}
	for _, f := range strings.Fields(line) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "pod":
			r.Pod = v
		case "client":
			r.Client = v
		}
	}
	if r.Pod == "" {
		return r, fmt.Errorf("unexpected reply %q", raw)
	}
	return r, nil
}

// EventuallyEcho retries Echo until it gets a reply accepted by check, or the cluster's timeout.
// (kube-proxy programs IPVS asynchronously after the API objects appear.)
func (c *Cluster) EventuallyEcho(t *testing.T, from *NS, proto, addr string, check func(Reply) error) Reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), c.Cfg.Timeout)
	defer cancel()
	start := time.Now()
	var got Reply
	attempts := 0
	var firstErr error
	err := waitUntil(ctx, 250*time.Millisecond, func() error {
		attempts++
		r, err := Echo(from, proto, addr, 2*time.Second)
		if err == nil {
			got = r
			if check != nil {
				err = check(r)
			}
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return err
	})
	if err != nil {
		c.DumpState(t)
		t.Fatalf("%s %s from %s: %v", proto, addr, from.Name, err)
	}
	t.Logf("%s %s from %s -> pod=%s client=%s (after %v, %d attempts; first error: %v)", proto, addr, from.Name,
		got.Pod, got.Client, time.Since(start).Round(time.Millisecond), attempts, firstErr)
	return got
}

// IPVSDestinations reads back (netlink) node's IPVS virtual server vip:port/proto and returns its
// real servers with a weight above 0 as ip:port (a removed endpoint may linger with weight 0 while
// its connections drain: graceful termination); error if the virtual server is absent.
func (c *Cluster) IPVSDestinations(node *Node, vip string, port uint16, proto string) ([]string, error) {
	all, err := c.IPVSRealServers(node, vip, port, proto)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, d := range all {
		if d.Weight > 0 {
			out = append(out, d.Addr)
		}
	}
	return out, nil
}

// RealServer is an IPVS destination as read back from the kernel.
type RealServer struct {
	Addr   string // ip:port
	Weight int
}

// IPVSRealServers returns every real server of node's virtual server vip:port/proto.
func (c *Cluster) IPVSRealServers(node *Node, vip string, port uint16, proto string) ([]RealServer, error) {
	h, err := libipvs.New(node.Path())
	if err != nil {
		return nil, err
	}
	defer h.Close()
	svcs, err := h.GetServices()
	if err != nil {
		return nil, err
	}
	pn := uint16(syscall.IPPROTO_TCP)
	if strings.EqualFold(proto, "udp") {
		pn = syscall.IPPROTO_UDP
	}
	for _, s := range svcs {
		if s.Address.Equal(net.ParseIP(vip)) && s.Port == port && s.Protocol == pn {
			ds, err := h.GetDestinations(s)
			if err != nil {
				return nil, err
			}
			out := []RealServer{}
			for _, d := range ds {
				out = append(out, RealServer{Addr: net.JoinHostPort(d.Address.String(), fmt.Sprint(d.Port)), Weight: d.Weight})
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("no IPVS virtual server %s:%d/%s on %s (%d services)", vip, port, proto, node.Name, len(svcs))
}

// DumpState writes what each node's kernel holds (ipvsadm -Ln, addresses, iptables nat) and the
// proxies' log tails to LOGDIR/dump-<test>.txt, and logs where.
func (c *Cluster) DumpState(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var b strings.Builder
	for _, n := range c.Net.Nodes {
		for _, cmd := range [][]string{{"ipvsadm", "-Ln"}, {"ip", "-br", "addr"}, {"iptables-save", "-t", "nat"}} {
			out, err := n.Run(ctx, cmd[0], cmd[1:]...)
			fmt.Fprintf(&b, "=== %s: %s (err=%v)\n%s\n", n.Name, strings.Join(cmd, " "), err, out)
		}
	}
	for _, p := range c.Proxies {
		fmt.Fprintf(&b, "=== %s kube-proxy log tail (%s):\n%s\n", p.Node.Name, p.LogPath, tail(p.LogPath, 40))
	}
	name := "dump-" + regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "_") + ".txt"
	path := filepath.Join(c.LogDir, name)
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Logf("state dump: %v", err)
		return
	}
	t.Logf("state of the nodes and kube-proxy logs dumped to %s", path)
}

func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// Eventually retries f every 250 ms until it returns nil or the cluster's timeout passes.
func (c *Cluster) Eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), c.Cfg.Timeout)
	defer cancel()
	start := time.Now()
	if err := waitUntil(ctx, 250*time.Millisecond, f); err != nil {
		c.DumpState(t)
		t.Fatalf("%s: %v", what, err)
	}
	t.Logf("%s (after %v)", what, time.Since(start).Round(time.Millisecond))
}
