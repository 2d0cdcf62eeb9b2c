package framework

import (
	"fmt"
	"net"
	"strings"

	"github.com/vishvananda/netlink"
)

// NewBareNode builds a minimal node for the benchmark (test/bench): a namespace named name with
// only lo and eth0 (NodeIP(1) on the node network, default route via the bridge, so it reaches
// the apiserver), Kubernetes name node1. No pod network, no VXLAN, no client: the node has exactly
// one NodePort address. Delete() removes it.
func NewBareNode(name string) (*Node, error) {
	root, err := RootNS()
	if err != nil {
		return nil, err
	}
	defer func() { root.NL.Close(); root.Handle.Close() }()
	if err := setupRoot(root); err != nil {
		return nil, err
	}
	ns, err := NewNS(name)
	if err != nil {
		return nil, err
	}
	node := &Node{NS: ns, Index: 1, Name: "node1", IP: NodeIP(1), PodCIDR: PodCIDR(1)}
	fail := func(err error) (*Node, error) { ns.Delete(); return nil, fmt.Errorf("bench node %s: %w", name, err) }
	host := shortName("vb-" + name)
	if err := vethPair(ns, "eth0", root, host); err != nil {
		return fail(err)
	}
	br, err := root.NL.LinkByName(BridgeName)
	if err != nil {
		return fail(err)
	}
	hl, err := root.NL.LinkByName(host)
	if err != nil {
		return fail(err)
	}
	if err := root.NL.LinkSetMaster(hl, br); err != nil {
		return fail(err)
	}
	if err := root.NL.LinkSetUp(hl); err != nil {
		return fail(err)
	}
	eth, err := ns.NL.LinkByName("eth0")
	if err != nil {
		return fail(err)
	}
	a, _ := netlink.ParseAddr(node.IP.String() + "/24")
	if err := ns.NL.AddrAdd(eth, a); err != nil {
		return fail(err)
	}
	if err := ns.NL.LinkSetUp(eth); err != nil {
		return fail(err)
	}
	gw := net.ParseIP(strings.Split(BridgeCIDR, "/")[0])
	if err := ns.NL.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: gw}); err != nil {
		return fail(err)
	}
	return node, nil
}

// NewBenchImpl names a kube-proxy binary for the benchmark (which builds its own nodes).
func NewBenchImpl(name, binary string) Impl {
	return Impl{Name: name, Binary: binary, prefix: name[:1]}
}
