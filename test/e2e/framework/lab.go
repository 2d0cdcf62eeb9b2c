package framework

// Helpers for the scenarios beyond plain request/reply: restarting and swapping kube-proxies,
// waiting for a sync, reading the kernel's IPVS state back as a comparable snapshot, long-lived
// TCP connections, HTTP from a namespace, routes and LoadBalancer status.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	libipvs "github.com/moby/ipvs"
	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// WithPrefix returns the implementation with another namespace/interface name prefix, for a
// test that builds its own lab network (names must not collide with another live network).
func (im Impl) WithPrefix(p string) Impl { im.prefix = p; return im }

// FindImpl returns the configured implementation named name ("upstream", "ours").
func (cfg Config) FindImpl(name string) (Impl, bool) {
	for _, im := range cfg.Impls {
		if im.Name == name {
			return im, true
		}
	}
	return Impl{Name: name}, false
}

// StartClusterPrefixed is StartCluster with impl's name prefix replaced (see WithPrefix).
func StartClusterPrefixed(t *testing.T, cfg Config, cs kubernetes.Interface, impl Impl, prefix string) (*Cluster, string) {
	return StartCluster(t, cfg, cs, impl.WithPrefix(prefix))
}

// ProxyOn returns the kube-proxy running on node i (1-based).
func (c *Cluster) ProxyOn(i int) *Proxy { return c.Proxies[i-1] }

// ReplaceProxy stops node i's kube-proxy (SIGTERM, as a kubelet would) and starts impl's with
// extra flags in its place; it returns when the new one runs and has completed a sync.
func (c *Cluster) ReplaceProxy(t *testing.T, i int, impl Impl, extra ...string) *Proxy {
	t.Helper()
	old := c.Proxies[i-1]
	old.Stop()
	t.Logf("%s: %s kube-proxy stopped (SIGTERM)", old.Node.Name, old.Impl.Name)
	return c.StartProxyOn(t, i, impl, extra...)
}

// StartProxyOn starts impl's kube-proxy on node i (whose previous one must have stopped) and
// waits until it has synced after its start.
func (c *Cluster) StartProxyOn(t *testing.T, i int, impl Impl, extra ...string) *Proxy {
	t.Helper()
	return c.StartProxyWith(t, i, fmt.Sprintf("%s %v", impl.Name, extra), func(node *Node) (*Proxy, error) {
		return StartProxy(impl, node, c.Cfg.Kubeconfig, c.LogDir, extra...)
	})
}

// ReplaceProxyWith is ReplaceProxy with a kube-proxy that start starts (StartImageProxy).
func (c *Cluster) ReplaceProxyWith(t *testing.T, i int, what string, start func(node *Node) (*Proxy, error)) *Proxy {
	t.Helper()
	old := c.Proxies[i-1]
	old.Stop()
	t.Logf("%s: %s kube-proxy stopped (SIGTERM)", old.Node.Name, old.Impl.Name)
	return c.StartProxyWith(t, i, what, start)
}

// StartProxyWith starts node i's kube-proxy with start (whose previous one must have stopped)
// and waits until it has synced after its start.
func (c *Cluster) StartProxyWith(t *testing.T, i int, what string, startProxy func(node *Node) (*Proxy, error)) *Proxy {
	t.Helper()
	node := c.Node(i)
	start := time.Now()
	p, err := startProxy(node)
	if err != nil {
		t.Fatalf("%s: %v", node.Name, err)
	}
	c.Proxies[i-1] = p
	ctx, cancel := context.WithTimeout(context.Background(), c.Cfg.Timeout)
	defer cancel()
	if err := p.WaitRunning(ctx); err != nil {
		t.Fatalf("%s: %v", node.Name, err)
	}
	if err := p.WaitSynced(ctx, start); err != nil {
		c.DumpState(t)
		t.Fatalf("%s: %v", node.Name, err)
	}
	t.Logf("%s: %s kube-proxy started and synced in %v", node.Name, what, time.Since(start).Round(time.Millisecond))
	return p
}

// LastSync scrapes the proxy's metrics (127.0.0.1:10249 in its node) for
// kubeproxy_sync_proxy_rules_last_timestamp_seconds.
func (p *Proxy) LastSync() (time.Time, error) {
	code, body, err := p.Node.HTTPGet("http://127.0.0.1:10249/metrics", 3*time.Second)
	if err != nil {
		return time.Time{}, err
	}
	if code != 200 {
		return time.Time{}, fmt.Errorf("metrics: HTTP %d", code)
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	var last float64
	found := false
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, "kubeproxy_sync_proxy_rules_last_timestamp_seconds") {
			continue
		}
		f := strings.Fields(l)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil && v > last {
			last, found = v, true
		}
	}
	if !found || last == 0 {
		return time.Time{}, fmt.Errorf("no sync yet (metric absent or 0)")
	}
	return time.Unix(0, int64(last*1e9)), nil
}

// WaitSynced waits until the proxy reports a completed sync at or after since.
func (p *Proxy) WaitSynced(ctx context.Context, since time.Time) error {
	return waitUntil(ctx, 250*time.Millisecond, func() error {
		if p.Exited() {
			return fmt.Errorf("kube-proxy exited; log tail:\n%s", tail(p.LogPath, 30))
		}
		ts, err := p.LastSync()
		if err != nil {
			return err
		}
		if ts.Before(since.Add(-time.Second)) { // clocks: same guest, sub-second metric rounding
			return fmt.Errorf("last sync %v is before %v", ts, since)
		}
		return nil
	})
}

// HTTPGet performs a GET from inside ns and returns status code and body.
func (ns *NS) HTTPGet(url string, timeout time.Duration) (int, string, error) {
	tr := &http.Transport{DisableKeepAlives: true, DialContext: func(_ context.Context, network, addr string) (net.Conn, error) {
		return ns.Dial(network, addr, timeout)
	}}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: timeout}
	resp, err := cl.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// AddRoute adds dst (CIDR or single address) via gw in ns; removed at the end of the test.
func (ns *NS) AddRoute(t *testing.T, dst string, gw net.IP) {
	t.Helper()
	if !strings.Contains(dst, "/") {
		dst += "/32"
	}
	_, d, err := net.ParseCIDR(dst)
	if err != nil {
		t.Fatal(err)
	}
	r := &netlink.Route{Dst: d, Gw: gw}
	if err := ns.NL.RouteReplace(r); err != nil {
		t.Fatalf("route %s via %s in %s: %v", dst, gw, ns.Name, err)
	}
	t.Cleanup(func() { _ = ns.NL.RouteDel(r) })
}

// addrsV4 lists link's IPv4 addresses, again when the kernel flags the dump as interrupted
// (addresses changed while it was read: a proxier binding thousands of them). After a few tries
// the error, netlink.ErrDumpInterrupted, goes to the caller.
func (ns *NS) addrsV4(l netlink.Link) ([]netlink.Addr, error) {
	var as []netlink.Addr
	var err error
	for range 5 {
		if as, err = ns.NL.AddrList(l, netlink.FAMILY_V4); !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return as, err
}

// AddrsOf returns the IPv4 addresses on link name in ns ("" slice when absent), sorted.
func (ns *NS) AddrsOf(name string) ([]string, int, error) {
	l, err := ns.NL.LinkByName(name)
	if err != nil {
		return nil, 0, err
	}
	as, err := ns.addrsV4(l)
	if err != nil {
		return nil, 0, err
	}
	out := []string{}
	for _, a := range as {
		out = append(out, a.IP.String())
	}
	sort.Strings(out)
	return out, l.Attrs().Index, nil
}

// NodeAddrs is every IPv4 address the node owns outside kube-ipvs0 (eth0, cni0, flannel.1):
// what a masqueraded packet from this node can carry as its source.
func (n *Node) NodeAddrs() map[string]bool {
	out := map[string]bool{}
	for _, l := range []string{"eth0", "cni0", "flannel.1"} {
		as, _, _ := n.AddrsOf(l)
		for _, a := range as {
			out[a] = true
		}
	}
	return out
}

// SetLoadBalancerIngress writes status.loadBalancer.ingress (ipMode VIP), as a cloud
// controller would.
func (c *Cluster) SetLoadBalancerIngress(t *testing.T, svc *corev1.Service, ips ...string) *corev1.Service {
	t.Helper()
	ctx := context.Background()
	cur, err := c.Client.CoreV1().Services(svc.Namespace).Get(ctx, svc.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	vip := corev1.LoadBalancerIPModeVIP
	cur.Status.LoadBalancer.Ingress = nil
	for _, ip := range ips {
		cur.Status.LoadBalancer.Ingress = append(cur.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip, IPMode: &vip})
	}
	out, err := c.Client.CoreV1().Services(svc.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("service %s/%s status: %v", svc.Namespace, svc.Name, err)
	}
	return out
}

// StreamConn is a long-lived TCP connection to an echoserver in stream mode (it echoes every
// line until the client closes).
type StreamConn struct {
	net.Conn
	Reply Reply // the banner: which pod answered, the client address it saw
	r     *bufio.Reader
}

// OpenStream connects from ns to addr and switches the echoserver to stream mode.
func OpenStream(ns *NS, addr string, timeout time.Duration) (*StreamConn, error) {
	c, err := ns.Dial("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	return startStream(c, timeout, "stream")
}

// startStream reads the echoserver's banner on c and switches it to mode ("stream",
// "idle-stream").
func startStream(c net.Conn, timeout time.Duration, mode string) (*StreamConn, error) {
	s := &StreamConn{Conn: c, r: bufio.NewReader(c)}
	_ = c.SetDeadline(time.Now().Add(timeout))
	line, err := s.r.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("banner: %w", err)
	}
	for _, f := range strings.Fields(line) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "pod":
			s.Reply.Pod = v
		case "client":
			s.Reply.Client = v
		}
	}
	s.Reply.Raw = line
	if err := s.Ping(mode); err != nil {
		c.Close()
		return nil, err
	}
	return s, nil
}

// Ping sends msg (one line) and expects it echoed back within 5 s.
func (s *StreamConn) Ping(msg string) error {
	_ = s.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := s.Write([]byte(msg + "\n")); err != nil {
		return fmt.Errorf("stream to %s: write: %w", s.Reply.Pod, err)
	}
	got, err := s.r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("stream to %s: read: %w", s.Reply.Pod, err)
	}
	if strings.TrimSpace(got) != msg {
		return fmt.Errorf("stream to %s: echoed %q, want %q", s.Reply.Pod, got, msg)
	}
	return nil
}

// IPVSService is one virtual server as read back from the kernel.
type IPVSService struct {
	Sched   string
	Flags   uint32
	Timeout uint32
	Dests   []RealServer // sorted
	Conns   uint32       // connections since the virtual server was created (resets if re-added)
}

// IPVSState is a node's IPVS table and kube-ipvs0, read back from the kernel.
type IPVSState struct {
	Services   map[string]IPVSService // "TCP 10.96.0.10:80"
	DummyIndex int                    // kube-ipvs0's ifindex (changes if the link is re-created)
	DummyAddrs []string
}

// ReadIPVS snapshots node's IPVS virtual servers (with real servers and stats) and kube-ipvs0.
func ReadIPVS(node *Node) (*IPVSState, error) {
	h, err := libipvs.New(node.Path())
	if err != nil {
		return nil, err
	}
	defer h.Close()
	svcs, err := h.GetServices()
	if err != nil {
		return nil, err
	}
	st := &IPVSState{Services: map[string]IPVSService{}}
	for _, s := range svcs {
		proto := "TCP"
		switch s.Protocol {
		case syscall.IPPROTO_UDP:
			proto = "UDP"
		case 132:
			proto = "SCTP"
		}
		key := fmt.Sprintf("%s %s", proto, net.JoinHostPort(s.Address.String(), fmt.Sprint(s.Port)))
		if s.FWMark != 0 {
			key = fmt.Sprintf("FWM %d", s.FWMark)
		}
		ds, err := h.GetDestinations(s)
		if err != nil {
			return nil, err
		}
		v := IPVSService{Sched: s.SchedName, Flags: s.Flags, Timeout: s.Timeout, Conns: s.Stats.Connections, Dests: []RealServer{}}
		for _, d := range ds {
			v.Dests = append(v.Dests, RealServer{Addr: net.JoinHostPort(d.Address.String(), fmt.Sprint(d.Port)), Weight: d.Weight})
		}
		sort.Slice(v.Dests, func(i, j int) bool { return v.Dests[i].Addr < v.Dests[j].Addr })
		st.Services[key] = v
	}
	st.DummyAddrs, st.DummyIndex, err = node.AddrsOf("kube-ipvs0")
	if err != nil {
		return nil, fmt.Errorf("kube-ipvs0: %w", err)
	}
	return st, nil
}

// Diff says how after differs from before (empty when identical): virtual servers added or
// deleted, scheduler/flags/timeout/real servers changed, a connection counter that went down
// (the virtual server was deleted and re-created), kube-ipvs0 re-created or its addresses changed.
func (before *IPVSState) Diff(after *IPVSState) []string {
	var out []string
	for k, b := range before.Services {
		a, ok := after.Services[k]
		if !ok {
			out = append(out, "virtual server deleted: "+k)
			continue
		}
		if a.Sched != b.Sched || a.Flags != b.Flags || a.Timeout != b.Timeout {
			out = append(out, fmt.Sprintf("%s: sched/flags/timeout %s/%#x/%d -> %s/%#x/%d", k, b.Sched, b.Flags, b.Timeout, a.Sched, a.Flags, a.Timeout))
		}
		if fmt.Sprint(a.Dests) != fmt.Sprint(b.Dests) {
			out = append(out, fmt.Sprintf("%s: real servers %v -> %v", k, b.Dests, a.Dests))
		}
		if a.Conns < b.Conns {
			out = append(out, fmt.Sprintf("%s: connection counter went down %d -> %d (virtual server re-created)", k, b.Conns, a.Conns))
		}
	}
	for k := range after.Services {
		if _, ok := before.Services[k]; !ok {
			out = append(out, "virtual server added: "+k)
		}
	}
	if before.DummyIndex != after.DummyIndex {
		out = append(out, fmt.Sprintf("kube-ipvs0 re-created (ifindex %d -> %d)", before.DummyIndex, after.DummyIndex))
	}
	if fmt.Sprint(before.DummyAddrs) != fmt.Sprint(after.DummyAddrs) {
		out = append(out, fmt.Sprintf("kube-ipvs0 addresses %v -> %v", before.DummyAddrs, after.DummyAddrs))
	}
	sort.Strings(out)
	return out
}

// StableIPVS reads node's IPVS state until two consecutive reads (250 ms apart) agree (kube-proxy has
// finished applying earlier changes) and returns it.
func (c *Cluster) StableIPVS(t *testing.T, node *Node) *IPVSState {
	t.Helper()
	var prev, cur *IPVSState
	c.Eventually(t, node.Name+": IPVS state stable", func() error {
		var err error
		if cur, err = ReadIPVS(node); err != nil {
			return err
		}
		defer func() { prev = cur }()
		if prev == nil {
			return fmt.Errorf("first read")
		}
		if d := prev.Diff(cur); len(d) > 0 {
			return fmt.Errorf("still changing: %v", d)
		}
		return nil
	})
	return cur
}

// StableIPVSCounted is StableIPVS once the TCP virtual server addr (ip:port) counts a connection:
// the kernel folds new connections into its counters with its rate estimator (every 2 s), and a
// virtual server deleted and re-created later shows only as a counter going back from above 0.
func (c *Cluster) StableIPVSCounted(t *testing.T, node *Node, addr string) *IPVSState {
	t.Helper()
	var st *IPVSState
	c.Eventually(t, "connections counted on "+addr, func() error {
		st = c.StableIPVS(t, node)
		if st.Services["TCP "+addr].Conns == 0 {
			return fmt.Errorf("no connection counted yet: %+v", st.Services["TCP "+addr])
		}
		return nil
	})
	return st
}

// MaxSyncDuration is the longest sync the proxy has done so far, from the histogram
// kubeproxy_sync_proxy_rules_duration_seconds (the upper bound of the highest non-empty bucket;
// the sum when that is +Inf): how long a repair can take on this (emulated, shared) machine.
func (p *Proxy) MaxSyncDuration() (time.Duration, error) {
	code, body, err := p.Node.HTTPGet("http://127.0.0.1:10249/metrics", 3*time.Second)
	if err != nil {
		return 0, err
	}
	if code != 200 {
		return 0, fmt.Errorf("metrics: HTTP %d", code)
	}
	var prev, sum float64
	var bound float64 = -1
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "kubeproxy_sync_proxy_rules_duration_seconds_sum") {
			f := strings.Fields(l)
			sum, _ = strconv.ParseFloat(f[len(f)-1], 64)
		}
		if !strings.HasPrefix(l, "kubeproxy_sync_proxy_rules_duration_seconds_bucket") {
			continue
		}
		f := strings.Fields(l)
		n, _ := strconv.ParseFloat(f[len(f)-1], 64)
		_, le, _ := strings.Cut(l, `le="`)
		le, _, _ = strings.Cut(le, `"`)
		if n > prev { // first bucket holding the slowest sync so far
			if v, err := strconv.ParseFloat(le, 64); err == nil && v < 1e6 { // not +Inf
				bound = v
			} else {
				bound = sum
			}
		}
		prev = n
	}
	if bound < 0 {
		return 0, fmt.Errorf("no sync duration histogram")
	}
	return time.Duration(bound * float64(time.Second)), nil
}
