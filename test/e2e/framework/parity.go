package framework

// The differential test's nodes and dumps (test/e2e/parity_test.go): two node namespaces with the
// SAME addresses (172.30.0.11 on eth0, 10.244.1.1 on cni0, Kubernetes name node1), one per
// implementation, so that both kube-proxies see an identical node. They cannot share the node
// bridge (two hosts with one address), so each sits behind a gateway namespace of its own that
// masquerades it onto a point-to-point link to the guest's root namespace (192.168.250.4k+1/30),
// which masquerades that out of QEMU's NIC to the apiserver. No flannel.1 (VXLAN) device: with
// one, --masquerade-random-fully=auto differs from upstream by design.

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	libipvs "github.com/moby/ipvs"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ParityUplinkCIDR is the range of the gateways' links to the root namespace.
const ParityUplinkCIDR = "192.168.250.0/24"

var parityRootOnce sync.Once
var parityRootErr error

// ParityNode is a node namespace (node1's addresses) behind its own gateway namespace.
type ParityNode struct {
	*Node
	GW  *NS
	net *Network
}

// NewParityNode builds the namespaces name (the node) and name+"gw" (its gateway). slot (0-63)
// picks the gateway's uplink /30; every live ParityNode needs its own slot.
func NewParityNode(name string, slot int, echoServer, logDir string) (*ParityNode, error) {
	root, err := RootNS()
	if err != nil {
		return nil, err
	}
	if err := setupRoot(root); err != nil {
		return nil, err
	}
	parityRootOnce.Do(func() {
		// Masquerade the gateways' uplinks out of QEMU's NIC, like the node network.
		args := []string{"-w", "-t", "nat", "-C", "POSTROUTING", "-s", ParityUplinkCIDR, "-o", GuestUplink, "-j", "MASQUERADE"}
		if exec.Command("iptables", args...).Run() != nil {
			args[3] = "-A"
			if out, err := exec.Command("iptables", args...).CombinedOutput(); err != nil {
				parityRootErr = fmt.Errorf("masquerade %s: %v: %s", ParityUplinkCIDR, err, out)
			}
		}
	})
	if parityRootErr != nil {
		return nil, parityRootErr
	}
	pn := &ParityNode{net: &Network{Root: root, EchoServer: echoServer, LogDir: logDir, prefix: name}}
	ok := false
	defer func() {
		if !ok {
			pn.Close()
		}
	}()
	if pn.GW, err = NewNS(name + "gw"); err != nil {
		return nil, err
	}
	ns, err := NewNS(name)
	if err != nil {
		return nil, err
	}
	pn.Node = &Node{NS: ns, Index: 1, Name: "node1", IP: NodeIP(1), PodCIDR: PodCIDR(1), network: pn.net}
	pn.net.Nodes = []*Node{pn.Node}

	// Uplink: root <-> gateway, a /30 of ParityUplinkCIDR.
	rootSide := net.IPv4(192, 168, 250, byte(4*slot+1)).To4()
	gwSide := net.IPv4(192, 168, 250, byte(4*slot+2)).To4()
	host := shortName("pu" + name)
	if l, err := root.NL.LinkByName(host); err == nil { // left over from an earlier run
		_ = root.NL.LinkDel(l)
	}
	if err := vethPair(pn.GW, "eth0", root, host); err != nil {
		return nil, err
	}
	hl, err := root.NL.LinkByName(host)
	if err != nil {
		return nil, err
	}
	if err := root.NL.AddrAdd(hl, &netlink.Addr{IPNet: &net.IPNet{IP: rootSide, Mask: net.CIDRMask(30, 32)}}); err != nil {
		return nil, fmt.Errorf("uplink address: %w", err)
	}
	if err := root.NL.LinkSetUp(hl); err != nil {
		return nil, err
	}
	up, err := pn.GW.NL.LinkByName("eth0")
	if err != nil {
		return nil, err
	}
	if err := pn.GW.NL.AddrAdd(up, &netlink.Addr{IPNet: &net.IPNet{IP: gwSide, Mask: net.CIDRMask(30, 32)}}); err != nil {
		return nil, err
	}
	if err := pn.GW.NL.LinkSetUp(up); err != nil {
		return nil, err
	}
	if err := pn.GW.NL.RouteAdd(&netlink.Route{LinkIndex: up.Attrs().Index, Gw: rootSide}); err != nil {
		return nil, err
	}
	// Gateway <-> node: the node sees the same bridge address (172.30.0.1/24) as its gateway.
	if err := vethPair(ns, "eth0", pn.GW, "down0"); err != nil {
		return nil, err
	}
	down, err := pn.GW.NL.LinkByName("down0")
	if err != nil {
		return nil, err
	}
	a, _ := netlink.ParseAddr(BridgeCIDR)
	if err := pn.GW.NL.AddrAdd(down, a); err != nil {
		return nil, err
	}
	if err := pn.GW.NL.LinkSetUp(down); err != nil {
		return nil, err
	}
	if err := pn.GW.Sysctl("net.ipv4.ip_forward", "1"); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := pn.GW.Run(ctx, "iptables", "-w", "-t", "nat", "-A", "POSTROUTING", "-o", "eth0", "-j", "MASQUERADE"); err != nil {
		return nil, err
	}
	eth, err := ns.NL.LinkByName("eth0")
	if err != nil {
		return nil, err
	}
	na, _ := netlink.ParseAddr(NodeIP(1).String() + "/24")
	if err := ns.NL.AddrAdd(eth, na); err != nil {
		return nil, err
	}
	// An IPv6 address too, so that the IPv6 side of dual-stack Services has a node address to
	// serve node ports on (no duplicate address detection: it would hold the address back).
	na6, _ := netlink.ParseAddr(NodeNetV6Prefix + "11/64")
	na6.Flags = unix.IFA_F_NODAD
	if err := ns.NL.AddrAdd(eth, na6); err != nil {
		return nil, fmt.Errorf("node IPv6 address: %w", err)
	}
	if err := ns.NL.LinkSetUp(eth); err != nil {
		return nil, err
	}
	gw := net.ParseIP(strings.Split(BridgeCIDR, "/")[0])
	if err := ns.NL.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: gw}); err != nil {
		return nil, err
	}
	if err := pn.Node.setupPodNetwork(); err != nil {
		return nil, fmt.Errorf("pod network: %w", err)
	}
	ok = true
	return pn, nil
}

// Close stops the node's pods and removes the node and gateway namespaces.
func (pn *ParityNode) Close() {
	if pn.Node != nil {
		pn.net.Root = nil // shared handle: closed below, once
		pn.net.Close()
		pn.Node = nil
	}
	if pn.GW != nil {
		pn.GW.Delete()
		pn.GW = nil
	}
}

// ParityRaw is everything one node's kube-proxy programs, as read back (not yet normalized).
type ParityRaw struct {
	IPVS      []string // one line per virtual server and per real server (see ReadParityRaw)
	IPVSConf  string   // global timeouts
	IPSet     string   // ipset save
	IPTables  string   // iptables-save
	IP6Tables string   // ip6tables-save
	Addrs     []string // kube-ipvs0: "link up=..", "addr ..."
	Sysctls   []string // key=value
}

// ParitySysctls are the sysctls a kube-proxy in IPVS mode may set in its network namespace.
var ParitySysctls = []string{
	"net/ipv4/vs/conntrack", "net/ipv4/vs/conn_reuse_mode", "net/ipv4/vs/expire_nodest_conn",
	"net/ipv4/vs/expire_quiescent_template", "net/ipv4/ip_forward", "net/ipv4/conf/all/route_localnet",
	"net/ipv4/conf/all/arp_ignore", "net/ipv4/conf/all/arp_announce", "net/bridge/bridge-nf-call-iptables",
	"net/ipv6/conf/all/forwarding",
}

// ReadParityRaw reads node's kernel state.
func ReadParityRaw(ctx context.Context, node *Node) (*ParityRaw, error) {
	r, err := ReadParityQuick(node)
	if err != nil {
		return nil, err
	}
	if r.IPSet, err = node.Run(ctx, "ipset", "save"); err != nil {
		return nil, err
	}
	if r.IPTables, err = node.Run(ctx, "iptables-save"); err != nil {
		return nil, err
	}
	if r.IP6Tables, err = node.Run(ctx, "ip6tables-save"); err != nil {
		return nil, err
	}
	err = node.Do(func() error {
		for _, k := range ParitySysctls {
			b, err := os.ReadFile(filepath.Join("/proc/sys", k))
			v := strings.TrimSpace(string(b))
			if err != nil {
				v = "absent"
			}
			r.Sysctls = append(r.Sysctls, strings.ReplaceAll(k, "/", ".")+"="+v)
		}
		return nil
	})
	return r, err
}

// ReadParityQuick reads what netlink gives without launching a process (IPVS and kube-ipvs0):
// cheap enough to poll while the proxies converge on a machine with one emulated CPU.
func ReadParityQuick(node *Node) (*ParityRaw, error) {
	r := &ParityRaw{}
	h, err := libipvs.New(node.Path())
	if err != nil {
		return nil, err
	}
	defer h.Close()
	svcs, err := h.GetServices()
	if err != nil {
		return nil, fmt.Errorf("ipvs services: %w", err)
	}
	for _, s := range svcs {
		key := ipvsKey(s)
		r.IPVS = append(r.IPVS, fmt.Sprintf("vs %s sched=%s flags=%#x timeout=%d netmask=%#x", key, s.SchedName, s.Flags, s.Timeout, s.Netmask))
		ds, err := h.GetDestinations(s)
		if err != nil {
			return nil, fmt.Errorf("ipvs destinations of %s: %w", key, err)
		}
		for _, d := range ds {
			r.IPVS = append(r.IPVS, fmt.Sprintf("rs %s -> %s weight=%d fwd=%#x", key,
				net.JoinHostPort(d.Address.String(), fmt.Sprint(d.Port)), d.Weight, d.ConnectionFlags&libipvs.ConnectionFlagFwdMask))
		}
	}
	if c, err := h.GetConfig(); err == nil {
		r.IPVSConf = fmt.Sprintf("tcp=%v tcpfin=%v udp=%v", c.TimeoutTCP, c.TimeoutTCPFin, c.TimeoutUDP)
	} else {
		r.IPVSConf = "error: " + err.Error()
	}
	if l, err := node.NL.LinkByName("kube-ipvs0"); err == nil {
		r.Addrs = append(r.Addrs, fmt.Sprintf("link kube-ipvs0 type=%s up=%v", l.Type(), l.Attrs().Flags&net.FlagUp != 0))
		for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
			var as []netlink.Addr
			for range 5 {
				if as, err = node.NL.AddrList(l, fam); err == nil {
					break
				}
			}
			if err != nil {
				return nil, fmt.Errorf("kube-ipvs0 addresses: %w", err)
			}
			for _, a := range as {
				if a.IP.IsLinkLocalUnicast() {
					continue
				}
				r.Addrs = append(r.Addrs, "addr kube-ipvs0 "+a.IPNet.String())
			}
		}
	} else {
		r.Addrs = append(r.Addrs, "link kube-ipvs0 absent")
	}
	sort.Strings(r.IPVS)
	return r, nil
}

func ipvsKey(s *libipvs.Service) string {
	if s.FWMark != 0 {
		return fmt.Sprintf("FWM %d af=%d", s.FWMark, s.AddressFamily)
	}
	proto := fmt.Sprint(s.Protocol)
	switch s.Protocol {
	case syscall.IPPROTO_TCP:
		proto = "TCP"
	case syscall.IPPROTO_UDP:
		proto = "UDP"
	case unix.IPPROTO_SCTP:
		proto = "SCTP"
	}
	return proto + " " + net.JoinHostPort(s.Address.String(), fmt.Sprint(s.Port))
}
