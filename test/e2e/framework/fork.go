package framework

// Helpers for the fork-feature scenarios (test/e2e/fork_*_test.go): restarting a node's kube-proxy
// with other flags or another kubeconfig, an extra host on the node network (a load balancer), an
// "apiserver on node1" relay, and kernel read-backs. Additive to the rest of the framework.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"k8s.io/client-go/tools/clientcmd"
)

// RestartProxy stops node's kube-proxy and starts the same implementation again with kubeconfig
// ("" = the cluster's) and the extra flags, then waits until it has completed a sync (its metric
// kubeproxy_sync_proxy_rules_last_timestamp_seconds is later than the restart).
func (c *Cluster) RestartProxy(t *testing.T, node *Node, kubeconfig string, extra ...string) {
	t.Helper()
	c.RestartProxies(t, []*Node{node}, func(*Node) string { return kubeconfig }, extra...)
}

// RestartProxies is RestartProxy for several nodes at once (stopped, started and waited for in
// parallel: a kube-proxy start takes many seconds under emulation). kubeconfig may be nil.
func (c *Cluster) RestartProxies(t *testing.T, nodes []*Node, kubeconfig func(*Node) string, extra ...string) {
	t.Helper()
	start := time.Now()
	if err := c.restartProxies(nodes, kubeconfig, extra...); err != nil {
		c.DumpState(t)
		t.Fatalf("restarting kube-proxies %v: %v", extra, err)
	}
	t.Logf("restarted kube-proxy on %d node(s) with %v in %v", len(nodes), extra, time.Since(start).Round(time.Millisecond))
}

func (c *Cluster) restartProxies(nodes []*Node, kubeconfig func(*Node) string, extra ...string) error {
	idx := make([]int, len(nodes))
	for k, n := range nodes {
		idx[k] = -1
		for i, p := range c.Proxies {
			if p.Node == n {
				idx[k] = i
			}
		}
		if idx[k] < 0 {
			return fmt.Errorf("no kube-proxy on %s", n.Name)
		}
	}
	var wg sync.WaitGroup
	for _, i := range idx {
		wg.Add(1)
		go func() { defer wg.Done(); c.Proxies[i].Stop() }()
	}
	wg.Wait()
	start := time.Now()
	errs := make([]error, len(nodes))
	for k, n := range nodes {
		kc := ""
		if kubeconfig != nil {
			kc = kubeconfig(n)
		}
		if kc == "" {
			kc = c.Cfg.Kubeconfig
		}
		p, err := StartProxy(c.Impl, n, kc, c.LogDir, extra...)
		if err != nil {
			return fmt.Errorf("%s: %w", n.Name, err)
		}
		c.Proxies[idx[k]] = p
		fmt.Fprintf(p.logf, "\n===== e2e: kube-proxy restarted at %s with kubeconfig %s, extra flags %v =====\n",
			start.Format(time.RFC3339Nano), kc, extra)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), c.Cfg.Timeout)
			defer cancel()
			if err := p.WaitSynced(ctx, start); err != nil {
				errs[k] = fmt.Errorf("%s: %w; log tail:\n%s", n.Name, err, tail(p.LogPath, 30))
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// WithProxies restarts the kube-proxies of nodes with kubeconfig(node) ("" = the cluster's) and
// extra flags for the rest of the test; at its end (register it before Namespace, so it runs after
// the Services are deleted) they are restarted with the cluster's defaults.
func (c *Cluster) WithProxies(t *testing.T, nodes []*Node, kubeconfig func(*Node) string, extra ...string) {
	t.Helper()
	c.RestoreProxiesOnCleanup(t, nodes...)
	c.RestartProxies(t, nodes, kubeconfig, extra...)
}

// RestoreProxiesOnCleanup restarts the kube-proxies of nodes with the cluster's defaults at the
// end of the test (for a test that restarts them with RestartProxy).
func (c *Cluster) RestoreProxiesOnCleanup(t *testing.T, nodes ...*Node) {
	t.Cleanup(func() {
		start := time.Now()
		if err := c.restartProxies(nodes, nil); err != nil {
			t.Errorf("restoring the kube-proxies: %v", err)
			return
		}
		t.Logf("kube-proxy restored to the defaults on %d node(s) in %v", len(nodes), time.Since(start).Round(time.Millisecond))
	})
}

// HTTPReply is an HTTP answer: status code and body.
type HTTPReply struct {
	Status int
	Body   string
}

// HTTPGetFrom GETs url from inside ns with source address local (nil: the kernel's choice).
func (ns *NS) HTTPGetFrom(rawURL string, local net.IP, timeout time.Duration) (HTTPReply, error) {
	tr := &http.Transport{DisableKeepAlives: true, Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := ns.Do(func() error {
				d := net.Dialer{Timeout: timeout}
				if local != nil {
					d.LocalAddr = &net.TCPAddr{IP: local}
				}
				var err error
				c, err = d.DialContext(ctx, network, addr)
				return err
			})
			return c, err
		}}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: timeout}
	resp, err := cl.Get(rawURL)
	if err != nil {
		return HTTPReply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return HTTPReply{Status: resp.StatusCode, Body: string(b)}, err
}

// AddHost adds a namespace named prefix+name on the node network (veth into the bridge) holding
// the addresses ips (the first one is its primary; all /24), default route via the bridge.
// It is removed at the end of the test.
func (c *Cluster) AddHost(t *testing.T, name string, ips ...string) *NS {
	t.Helper()
	ns, err := NewNS(c.Net.prefix + name)
	if err != nil {
		t.Fatal(err)
	}
	root := c.Net.Root
	host := shortName(c.Net.prefix + "vh-" + name)
	// A namespace outlives its name while a process still holds it, and its veth pair with
	// it: delete the pair through the bridge side, now (a previous test's) and at the end.
	dropVeth := func() {
		if l, err := root.NL.LinkByName(host); err == nil {
			_ = root.NL.LinkDel(l)
		}
	}
	dropVeth()
	t.Cleanup(func() { dropVeth(); ns.Delete() })
	if err := vethPair(ns, "eth0", root, host); err != nil {
		t.Fatal(err)
	}
	br, err := root.NL.LinkByName(BridgeName)
	if err != nil {
		t.Fatal(err)
	}
	hl, err := root.NL.LinkByName(host)
	if err == nil {
		err = root.NL.LinkSetMaster(hl, br)
	}
	if err == nil {
		err = root.NL.LinkSetUp(hl)
	}
	if err != nil {
		t.Fatalf("host %s: %v", name, err)
	}
	eth, err := ns.NL.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	for _, ip := range ips {
		a, err := netlink.ParseAddr(ip + "/24")
		if err != nil {
			t.Fatal(err)
		}
		if err := ns.NL.AddrAdd(eth, a); err != nil {
			t.Fatalf("host %s address %s: %v", name, ip, err)
		}
	}
	if err := ns.NL.LinkSetUp(eth); err != nil {
		t.Fatal(err)
	}
	gw := net.ParseIP(strings.Split(BridgeCIDR, "/")[0])
	if err := ns.NL.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: gw}); err != nil {
		t.Fatal(err)
	}
	return ns
}

// KubeIPVS0Addrs returns the IPv4 addresses bound to node's kube-ipvs0 (empty if it is absent).
func (n *Node) KubeIPVS0Addrs() ([]string, error) {
	l, err := n.NL.LinkByName("kube-ipvs0")
	if err != nil {
		return nil, nil
	}
	as, err := n.addrsV4(l)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, a := range as {
		out = append(out, a.IP.String())
	}
	return out, nil
}

// HasKubeIPVS0Addr reports whether ip is bound to node's kube-ipvs0.
func (n *Node) HasKubeIPVS0Addr(ip string) (bool, error) {
	as, err := n.KubeIPVS0Addrs()
	if err != nil {
		return false, err
	}
	for _, a := range as {
		if a == ip {
			return true, nil
		}
	}
	return false, nil
}

// APIServerRelay makes node serve the apiserver on its node-network address (as a control-plane
// node does): a TCP relay listening on node.IP:<apiserver port> inside node's namespace, which
// dials the apiserver from that namespace (so the path really goes through node). It returns a
// kubeconfig for the other nodes that points at https://<node.IP>:<port> (TLS name "kubernetes",
// one of the serving certificate's SANs). Stopped at the end of the test.
func (c *Cluster) APIServerRelay(t *testing.T, node *Node) (kubeconfig, addr string) {
	t.Helper()
	kc, err := clientcmd.LoadFromFile(c.Cfg.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	var target string
	for _, cl := range kc.Clusters {
		u, err := url.Parse(cl.Server)
		if err != nil {
			t.Fatal(err)
		}
		target = u.Host
		cl.Server = ""
	}
	_, port, err := net.SplitHostPort(target)
	if err != nil {
		t.Fatalf("apiserver address %q: %v", target, err)
	}
	addr = net.JoinHostPort(node.IP.String(), port)
	for _, cl := range kc.Clusters {
		cl.Server = "https://" + addr
		cl.TLSServerName = "kubernetes"
	}
	var ln net.Listener
	if err := node.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatalf("relay listen on %s in %s: %v", addr, node.Name, err)
	}
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	track := func(cs ...net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		if conns == nil {
			return false
		}
		for _, x := range cs {
			conns[x] = true
		}
		return true
	}
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				out, err := node.Dial("tcp", target, 5*time.Second)
				if err != nil {
					in.Close()
					return
				}
				if !track(in, out) {
					in.Close()
					out.Close()
					return
				}
				go func() { _, _ = io.Copy(out, in); out.Close(); in.Close() }()
				_, _ = io.Copy(in, out)
				in.Close()
				out.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for x := range conns {
			x.Close()
		}
		conns = nil
		mu.Unlock()
	})
	path := filepath.Join(c.LogDir, "kubeconfig-via-"+node.Name)
	if c.LogDir == "" {
		path = filepath.Join(t.TempDir(), "kubeconfig")
	}
	_ = os.Remove(path)
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path, addr
}
