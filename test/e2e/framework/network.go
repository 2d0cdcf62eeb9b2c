package framework

import (
	"context"
	"fmt"
	"hash/fnv"
	"net"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The lab's addressing (all inside the QEMU guest; nothing leaves it but the apiserver connection,
// which QEMU's user network forwards to the host's loopback).
const (
	BridgeName    = "e2ebr0"        // the node network: a bridge in the guest's root netns
	BridgeCIDR    = "172.30.0.1/24" // the bridge's own address: default gateway of nodes and client
	NodeNetPrefix = "172.30.0."     // nodeN = 172.30.0.(10+N), client = 172.30.0.100
	ClientIP      = "172.30.0.100"
	ClusterCIDR   = "10.244.0.0/16" // pod network; node N owns 10.244.N.0/24 (flannel style)
	ServiceCIDR   = "10.96.0.0/16"
	// The IPv6 side, used by the parity test's dual-stack Services only: the apiserver's second
	// service range (hack/lab/control-plane.sh), the pod network of their endpoints, and the
	// parity node's IPv6 address (node1 = NodeNetV6Prefix + "11").
	ServiceCIDRv6   = "fd00:10:96::/108"
	ClusterCIDRv6   = "fd00:10:244::/56"
	NodeNetV6Prefix = "fd00:172:30::"
	FlannelVNI      = 1
	FlannelPort     = 8472 // flannel's VXLAN UDP port
	FlannelMTU      = 1450
	GuestUplink     = "qemu0" // QEMU's NIC in the guest (renamed by hack/lab/run-in-guest.sh)
)

// NodeIP is node n's address on the node network.
func NodeIP(n int) net.IP { return net.ParseIP(fmt.Sprintf("%s%d", NodeNetPrefix, 10+n)).To4() }

// PodCIDR is node n's pod subnet.
func PodCIDR(n int) *net.IPNet {
	_, c, _ := net.ParseCIDR(fmt.Sprintf("10.244.%d.0/24", n))
	return c
}

// vtepMAC is node n's flannel.1 MAC (deterministic, locally administered).
func vtepMAC(n int) net.HardwareAddr { return net.HardwareAddr{0x0a, 0x58, 0x0a, 0xf4, byte(n), 0x00} }

// Node is a "machine" of the cluster: a network namespace on the node network (eth0 on the bridge),
// with a cni0 bridge for its pods and a flannel.1 VXLAN device carrying the pod network to the
// other nodes.
type Node struct {
	*NS
	Index   int
	Name    string // Kubernetes node name: node1, node2, ...
	IP      net.IP
	PodCIDR *net.IPNet

	mu      sync.Mutex
	podSeq  int
	pods    []*Pod
	network *Network
}

// Pod is a network namespace behind a node (veth into the node's cni0 bridge) running echoserver.
type Pod struct {
	*NS
	Name string
	Node *Node
	IP   net.IP
	cmd  *exec.Cmd
	done chan struct{}
}

// Network is the whole lab network: nodes, the client and the pods.
type Network struct {
	Root   *NS
	Nodes  []*Node
	Client *NS // outside the cluster, on the node network (172.30.0.100)

	EchoServer string // path of the echoserver binary
	LogDir     string
	prefix     string
}

var rootOnce sync.Once
var rootErr error

// setupRoot prepares the guest's root namespace once: kernel modules, the node-network bridge,
// forwarding and masquerading out of QEMU's NIC (so nodes reach the apiserver at 10.0.2.100).
func setupRoot(root *NS) error {
	rootOnce.Do(func() {
		mods := []string{"ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh", "ip_vs_lc", "ip_vs_mh", "nf_conntrack",
			"dummy", "veth", "bridge", "br_netfilter", "vxlan", "xt_ipvs", "xt_set", "xt_comment",
			"xt_mark", "xt_addrtype", "xt_conntrack", "xt_MASQUERADE", "xt_nat", "ip_set_hash_ip",
			"ip_set_hash_ipport", "ip_set_hash_ipportip", "ip_set_hash_ipportnet", "ip_set_hash_net",
			"ip_set_bitmap_port", "nf_nat", "iptable_nat", "iptable_filter", "iptable_mangle"}
		if out, err := exec.Command("modprobe", append([]string{"-a"}, mods...)...).CombinedOutput(); err != nil {
			rootErr = fmt.Errorf("modprobe: %v: %s", err, out)
			return
		}
		if err := root.Sysctl("net.ipv4.ip_forward", "1"); err != nil {
			rootErr = err
			return
		}
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: BridgeName}}
		if err := root.NL.LinkAdd(br); err != nil {
			rootErr = fmt.Errorf("bridge: %w", err)
			return
		}
		addr, _ := netlink.ParseAddr(BridgeCIDR)
		if err := root.NL.AddrAdd(br, addr); err != nil {
			rootErr = err
			return
		}
		if err := root.NL.LinkSetUp(br); err != nil {
			rootErr = err
			return
		}
		// Bridged frames on the node network must not be run through the root netns' iptables.
		_ = root.Sysctl("net.bridge.bridge-nf-call-iptables", "0")
		if out, err := exec.Command("iptables", "-w", "-t", "nat", "-A", "POSTROUTING", "-s", "172.30.0.0/24",
			"-o", GuestUplink, "-j", "MASQUERADE").CombinedOutput(); err != nil {
			rootErr = fmt.Errorf("masquerade: %v: %s", err, out)
		}
	})
	return rootErr
}

// NewNetwork builds the node network with n nodes and the client. prefix keeps namespace names
// unique (e.g. the proxy implementation's name); nodes are still named node1..nodeN in Kubernetes.
func NewNetwork(prefix string, n int, echoServer, logDir string) (*Network, error) {
	root, err := RootNS()
	if err != nil {
		return nil, err
	}
	if err := setupRoot(root); err != nil {
		return nil, err
	}
	nw := &Network{Root: root, EchoServer: echoServer, LogDir: logDir, prefix: prefix}
	ok := false
	defer func() {
		if !ok {
			nw.Close()
		}
	}()
	br, err := root.NL.LinkByName(BridgeName)
	if err != nil {
		return nil, err
	}
	attach := func(ns *NS, ip string, idx int) error {
		host := fmt.Sprintf("%s%d", "vn-", idx) // root-side veth, on the bridge
		if idx == 0 {
			host = "vn-client"
		}
		host = shortName(prefix + host)
		if err := vethPair(ns, "eth0", root, host); err != nil {
			return err
		}
		hl, err := root.NL.LinkByName(host)
		if err != nil {
			return err
		}
		if err := root.NL.LinkSetMaster(hl, br); err != nil {
			return err
		}
		if err := root.NL.LinkSetUp(hl); err != nil {
			return err
		}
		eth, err := ns.NL.LinkByName("eth0")
		if err != nil {
			return err
		}
		a, _ := netlink.ParseAddr(ip + "/24")
		if err := ns.NL.AddrAdd(eth, a); err != nil {
			return err
		}
		if err := ns.NL.LinkSetUp(eth); err != nil {
			return err
		}
		gw := net.ParseIP(strings.Split(BridgeCIDR, "/")[0])
		return ns.NL.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: gw})
	}

	for i := 1; i <= n; i++ {
		ns, err := NewNS(fmt.Sprintf("%snode%d", prefix, i))
		if err != nil {
			return nil, err
		}
		node := &Node{NS: ns, Index: i, Name: fmt.Sprintf("node%d", i), IP: NodeIP(i), PodCIDR: PodCIDR(i), network: nw}
		nw.Nodes = append(nw.Nodes, node)
		if err := attach(ns, node.IP.String(), i); err != nil {
			return nil, fmt.Errorf("%s: %w", node.Name, err)
		}
		if err := node.setupPodNetwork(); err != nil {
			return nil, fmt.Errorf("%s pod network: %w", node.Name, err)
		}
	}
	for _, node := range nw.Nodes {
		if err := node.setupFlannel(nw.Nodes); err != nil {
			return nil, fmt.Errorf("%s vxlan: %w", node.Name, err)
		}
	}
	if nw.Client, err = NewNS(prefix + "client"); err != nil {
		return nil, err
	}
	if err := attach(nw.Client, ClientIP, 0); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	ok = true
	return nw, nil
}

// shortName keeps interface names within IFNAMSIZ-1 (15) characters.
func shortName(s string) string {
	if len(s) <= 15 {
		return s
	}
	h := fnv.New32a()
	h.Write([]byte(s))
	return fmt.Sprintf("%s%08x", s[:7], h.Sum32())
}

// vethPair creates a veth pair: nameA inside a, nameB inside b.
func vethPair(a *NS, nameA string, b *NS, nameB string) error {
	// Created from inside a (where nameA, typically eth0, is still free: creating it from a
	// namespace that already has an eth0 fails with "file exists"), peer moved into b.
	v := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: nameA},
		PeerName:      nameB,
		PeerNamespace: netlink.NsFd(int(b.Handle)),
	}
	if err := a.NL.LinkAdd(v); err != nil {
		return fmt.Errorf("veth %s/%s - %s/%s: %w", a.Name, nameA, b.Name, nameB, err)
	}
	return nil
}

// setupPodNetwork: forwarding, cni0 bridge holding the first address of the pod CIDR (as the
// bridge CNI plugin under flannel does).
func (n *Node) setupPodNetwork() error {
	for k, v := range map[string]string{
		"net.ipv4.ip_forward":                 "1",
		"net.ipv4.conf.all.rp_filter":         "0",
		"net.ipv4.conf.default.rp_filter":     "0",
		"net.bridge.bridge-nf-call-iptables":  "1", // as kube-proxy expects on a bridge CNI
		"net.bridge.bridge-nf-call-ip6tables": "1",
	} {
		if err := n.Sysctl(k, v); err != nil && !strings.HasPrefix(k, "net.bridge") {
			return err
		}
	}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "cni0", MTU: FlannelMTU}}
	if err := n.NL.LinkAdd(br); err != nil {
		return err
	}
	gw := make(net.IP, 4)
	copy(gw, n.PodCIDR.IP.To4())
	gw[3] = 1
	if err := n.NL.AddrAdd(br, &netlink.Addr{IPNet: &net.IPNet{IP: gw, Mask: n.PodCIDR.Mask}}); err != nil {
		return err
	}
	return n.NL.LinkSetUp(br)
}

// setupFlannel creates flannel.1 (VXLAN VNI 1, UDP 8472, no learning) and, for every other node,
// the route, the permanent neighbour and the FDB entry flanneld would program.
func (n *Node) setupFlannel(all []*Node) error {
	eth, err := n.NL.LinkByName("eth0")
	if err != nil {
		return err
	}
	vx := &netlink.Vxlan{
		LinkAttrs:    netlink.LinkAttrs{Name: "flannel.1", MTU: FlannelMTU, HardwareAddr: vtepMAC(n.Index)},
		VxlanId:      FlannelVNI,
		VtepDevIndex: eth.Attrs().Index,
		SrcAddr:      n.IP,
		Port:         FlannelPort,
		Learning:     false,
	}
	if err := n.NL.LinkAdd(vx); err != nil {
		return err
	}
	link, err := n.NL.LinkByName("flannel.1")
	if err != nil {
		return err
	}
	if err := n.NL.AddrAdd(link, &netlink.Addr{IPNet: &net.IPNet{IP: n.PodCIDR.IP, Mask: net.CIDRMask(32, 32)}}); err != nil {
		return err
	}
	if err := n.NL.LinkSetUp(link); err != nil {
		return err
	}
	for _, o := range all {
		if o == n {
			continue
		}
		vtep := o.PodCIDR.IP.To4() // flannel: the remote VTEP's address is the .0 of its subnet
		if err := n.NL.NeighSet(&netlink.Neigh{LinkIndex: link.Attrs().Index, Family: unix.AF_INET,
			State: netlink.NUD_PERMANENT, IP: vtep, HardwareAddr: vtepMAC(o.Index)}); err != nil {
			return fmt.Errorf("neigh: %w", err)
		}
		if err := n.NL.NeighSet(&netlink.Neigh{LinkIndex: link.Attrs().Index, Family: unix.AF_BRIDGE,
			Flags: netlink.NTF_SELF, State: netlink.NUD_PERMANENT, IP: o.IP, HardwareAddr: vtepMAC(o.Index)}); err != nil {
			return fmt.Errorf("fdb: %w", err)
		}
		if err := n.NL.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: o.PodCIDR, Gw: vtep,
			Flags: int(netlink.FLAG_ONLINK)}); err != nil {
			return fmt.Errorf("route: %w", err)
		}
	}
	return nil
}

// AddPod creates a pod namespace behind node n with the next free address of its pod CIDR
// (from .10), and starts echoserver in it (ports: TCP and UDP each).
func (n *Node) AddPod(name string, ports ...int) (*Pod, error) {
	n.mu.Lock()
	n.podSeq++
	seq := n.podSeq
	n.mu.Unlock()
	ip := make(net.IP, 4)
	copy(ip, n.PodCIDR.IP.To4())
	ip[3] = byte(9 + seq)
	ns, err := NewNS(n.network.prefix + "pod-" + name)
	if err != nil {
		return nil, err
	}
	p := &Pod{NS: ns, Name: name, Node: n, IP: ip, done: make(chan struct{})}
	fail := func(err error) (*Pod, error) { ns.Delete(); return nil, fmt.Errorf("pod %s: %w", name, err) }
	hostIf := shortName(fmt.Sprintf("veth%s%d", n.network.prefix, seq))
	if err := vethPair(ns, "eth0", n.NS, hostIf); err != nil {
		return fail(err)
	}
	hl, err := n.NL.LinkByName(hostIf)
	if err != nil {
		return fail(err)
	}
	br, err := n.NL.LinkByName("cni0")
	if err != nil {
		return fail(err)
	}
	if err := n.NL.LinkSetMaster(hl, br); err != nil {
		return fail(err)
	}
	if err := n.NL.LinkSetHairpin(hl, true); err != nil { // bridge CNI hairpinMode (flannel's default)
		return fail(err)
	}
	if err := n.NL.LinkSetUp(hl); err != nil {
		return fail(err)
	}
	eth, err := ns.NL.LinkByName("eth0")
	if err != nil {
		return fail(err)
	}
	if err := ns.NL.LinkSetMTU(eth, FlannelMTU); err != nil {
		return fail(err)
	}
	if err := ns.NL.AddrAdd(eth, &netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: n.PodCIDR.Mask}}); err != nil {
		return fail(err)
	}
	if err := ns.NL.LinkSetUp(eth); err != nil {
		return fail(err)
	}
	gw := make(net.IP, 4)
	copy(gw, n.PodCIDR.IP.To4())
	gw[3] = 1
	if err := ns.NL.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: gw}); err != nil {
		return fail(err)
	}
	if len(ports) == 0 {
		ports = []int{8080}
	}
	ps := make([]string, len(ports))
	for i, port := range ports {
		ps[i] = fmt.Sprint(port)
	}
	logf, err := createLog(n.network.LogDir, "pod-"+name+".log")
	if err != nil {
		return fail(err)
	}
	p.cmd = exec.Command(n.network.EchoServer, "-name", name, "-ports", strings.Join(ps, ","))
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := ns.Start(p.cmd); err != nil {
		logf.Close()
		return fail(err)
	}
	go func() { _ = p.cmd.Wait(); logf.Close(); close(p.done) }()
	n.mu.Lock()
	n.pods = append(n.pods, p)
	n.mu.Unlock()
	// Wait until it listens (first port, TCP), from inside the pod.
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := ns.Dial("tcp", net.JoinHostPort(ip.String(), ps[0]), 2*time.Second)
		if err == nil {
			c.Close()
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("pod %s: echoserver exited: %v", name, p.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("pod %s: echoserver not listening: %w", name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop kills the pod's server and removes its namespace.
func (p *Pod) Stop() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.Delete()
}

// Close tears the network down (pods, nodes, client); the root bridge stays for the next one.
func (nw *Network) Close() {
	for _, n := range nw.Nodes {
		n.mu.Lock()
		pods := n.pods
		n.pods = nil
		n.mu.Unlock()
		for _, p := range pods {
			p.Stop()
		}
		n.Delete()
	}
	nw.Nodes = nil
	if nw.Client != nil {
		nw.Client.Delete()
		nw.Client = nil
	}
	if nw.Root != nil {
		nw.Root.NL.Close()
		nw.Root.Handle.Close()
		nw.Root = nil
	}
}

// NodeByName returns the node named name (node1...).
func (nw *Network) NodeByName(name string) *Node {
	for _, n := range nw.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// WaitTCP dials addr from ns until it answers or ctx ends.
func waitUntil(ctx context.Context, every time.Duration, f func() error) error {
	var last error
	for {
		if last = f(); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), last)
		case <-time.After(every):
		}
	}
}
