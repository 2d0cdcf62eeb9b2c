package diagnose

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipset"
	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
)

// Source is one thing the collector reads. A check names the sources it needs; when one could
// not be read the check is reported as skipped with that source's error, and the others run.
type Source string

const (
	SourceKernelRelease  Source = "kernel-release"
	SourceLinks          Source = "links"  // links, their kinds, VXLAN ports, tx checksum offload, addresses
	SourceRoutes         Source = "routes" // default gateways
	SourceSysctls        Source = "sysctls"
	SourceIPTables       Source = "iptables" // iptables-save / ip6tables-save of nat and mangle
	SourceIPVS           Source = "ipvs"
	SourceIPSets         Source = "ipsets"
	SourceKernelLog      Source = "kernel-log" // martian lines; evidence only, never required
	SourceServices       Source = "services"
	SourceEndpointSlices Source = "endpointslices"
	SourceNodes          Source = "nodes"
)

// Snapshot is everything the checks look at, read once.
type Snapshot struct {
	NodeName      string // the Node this node is (hostname or --hostname-override)
	KernelRelease string // uname -r
	Links         []Link
	Gateways      []netip.Addr
	// Sysctls by path under /proc/sys ("net/ipv4/vs/conntrack"); a key the kernel does not have
	// is absent.
	Sysctls map[string]string
	// IPTables holds iptables-save output per family ("IPv4", "IPv6") and table ("nat", "mangle").
	IPTables map[string]map[string]string
	IPVS     []kipvs.VirtualServer
	IPSets   []ipset.Content
	// KernelLog holds the kernel log lines about martian packets.
	KernelLog      []string
	Services       []corev1.Service
	EndpointSlices []discoveryv1.EndpointSlice
	Nodes          []corev1.Node
	// Missing names each source that could not be read, with why.
	Missing map[Source]string
}

// Link is a network interface as the kernel reports it.
type Link struct {
	Name  string
	Kind  string // "vxlan", "dummy", "bridge", "veth", "device" (no kind: a physical NIC), ...
	Up    bool
	Addrs []netip.Addr
	// VXLANPort is the UDP destination port of a vxlan link (0 for others).
	VXLANPort uint16
	// TxChecksum is the link's tx-checksumming feature; nil when it could not be read.
	TxChecksum *bool
}

// has reports whether every source is present.
func (s *Snapshot) has(srcs ...Source) (missing Source, reason string, ok bool) {
	for _, src := range srcs {
		if r, gone := s.Missing[src]; gone {
			return src, r, false
		}
	}
	return "", "", true
}

// link returns the named link.
func (s *Snapshot) link(name string) (Link, bool) {
	for _, l := range s.Links {
		if l.Name == name {
			return l, true
		}
	}
	return Link{}, false
}
