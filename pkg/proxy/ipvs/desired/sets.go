package desired

import (
	"net"
	"net/netip"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/objects"
)

// Base (IPv4) names of the ipsets. The IPv6 instance of each set is named by SetName.
const (
	SetLoopBack               = "KUBE-LOOP-BACK"
	SetClusterIP              = "KUBE-CLUSTER-IP"
	SetExternalIP             = "KUBE-EXTERNAL-IP"
	SetExternalIPLocal        = "KUBE-EXTERNAL-IP-LOCAL"
	SetLoadBalancer           = "KUBE-LOAD-BALANCER"
	SetLoadBalancerLocal      = "KUBE-LOAD-BALANCER-LOCAL"
	SetLoadBalancerFW         = "KUBE-LOAD-BALANCER-FW"
	SetLoadBalancerSourceIP   = "KUBE-LOAD-BALANCER-SOURCE-IP"
	SetLoadBalancerSourceCIDR = "KUBE-LOAD-BALANCER-SOURCE-CIDR"
	SetNodePortTCP            = "KUBE-NODE-PORT-TCP"
	SetNodePortLocalTCP       = "KUBE-NODE-PORT-LOCAL-TCP"
	SetNodePortUDP            = "KUBE-NODE-PORT-UDP"
	SetNodePortLocalUDP       = "KUBE-NODE-PORT-LOCAL-UDP"
	SetNodePortSCTP           = "KUBE-NODE-PORT-SCTP-HASH"
	SetNodePortLocalSCTP      = "KUBE-NODE-PORT-LOCAL-SCTP-HASH"
	SetHealthCheckNodePort    = "KUBE-HEALTH-CHECK-NODE-PORT"
	SetIPVSIPs                = "KUBE-IPVS-IPS"
)

// Set types, spelled as ipset spells them.
const (
	TypeHashIP        = "hash:ip"
	TypeHashIPPort    = "hash:ip,port"
	TypeHashIPPortIP  = "hash:ip,port,ip"
	TypeHashIPPortNet = "hash:ip,port,net"
	TypeBitmapPort    = "bitmap:port"

	// bitmapPortRange covers every port: node ports are not limited to the apiserver's
	// --service-node-port-range, and health check node ports come from the same range.
	bitmapPortRange = "0-65535"

	// maxSetNameLen is IPSET_MAXNAMELEN-1: the kernel rejects longer names.
	maxSetNameLen = 31
)

// setCatalogue lists the sets in the order upstream declares them. The comments are upstream's
// texts verbatim because they are also the iptables rule comments, which must not change across
// an upgrade from upstream (iptables-restore would otherwise leave stale rules).
var setCatalogue = []struct {
	name, typ, comment string
}{
	{SetLoopBack, TypeHashIPPortIP, "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose"},
	{SetClusterIP, TypeHashIPPort, "Kubernetes service cluster ip + port for masquerade purpose"},
	{SetExternalIP, TypeHashIPPort, "Kubernetes service external ip + port for masquerade and filter purpose"},
	{SetExternalIPLocal, TypeHashIPPort, "Kubernetes service external ip + port with externalTrafficPolicy=local"},
	{SetLoadBalancer, TypeHashIPPort, "Kubernetes service lb portal"},
	{SetLoadBalancerFW, TypeHashIPPort, "Kubernetes service load balancer ip + port for load balancer with sourceRange"},
	{SetLoadBalancerLocal, TypeHashIPPort, "Kubernetes service load balancer ip + port with externalTrafficPolicy=local"},
	{SetLoadBalancerSourceIP, TypeHashIPPortIP, "Kubernetes service load balancer ip + port + source IP for packet filter purpose"},
	{SetLoadBalancerSourceCIDR, TypeHashIPPortNet, "Kubernetes service load balancer ip + port + source cidr for packet filter purpose"},
	{SetNodePortTCP, TypeBitmapPort, "Kubernetes nodeport TCP port for masquerade purpose"},
	{SetNodePortLocalTCP, TypeBitmapPort, "Kubernetes nodeport TCP port with externalTrafficPolicy=local"},
	{SetNodePortUDP, TypeBitmapPort, "Kubernetes nodeport UDP port for masquerade purpose"},
	{SetNodePortLocalUDP, TypeBitmapPort, "Kubernetes nodeport UDP port with externalTrafficPolicy=local"},
	{SetNodePortSCTP, TypeHashIPPort, "Kubernetes nodeport SCTP port for masquerade purpose with type 'hash ip:port'"},
	{SetNodePortLocalSCTP, TypeHashIPPort, "Kubernetes nodeport SCTP port with externalTrafficPolicy=local with type 'hash ip:port'"},
	{SetHealthCheckNodePort, TypeBitmapPort, "Kubernetes health check node port"},
	{SetIPVSIPs, TypeHashIP, "Addresses on the ipvs interface"},
}

// SetName is the kernel name of a set in a family. Both families' sets live in one network
// namespace, so IPv6 sets get the "KUBE-6-" prefix; IPv4 names stay as they always were so an
// upgrade finds its sets. Names that grow past the kernel limit are cut, as upstream cuts them.
func SetName(family v1.IPFamily, base string) string {
	if family != v1.IPv6Protocol || !strings.HasPrefix(base, "KUBE-") {
		return base
	}
	name := "KUBE-6-" + strings.TrimPrefix(base, "KUBE-")
	if len(name) > maxSetNameLen {
		name = name[:maxSetNameLen]
	}
	return name
}

// Sets is the catalogue of sets the proxier keeps in a family, in upstream's order.
func Sets(family v1.IPFamily) []objects.IPSet {
	out := make([]objects.IPSet, 0, len(setCatalogue))
	for _, s := range setCatalogue {
		set := objects.IPSet{
			Name:    SetName(family, s.name),
			Type:    s.typ,
			Family:  setFamily(family),
			Comment: s.comment,
		}
		if s.typ == TypeBitmapPort {
			set.Range = bitmapPortRange
		}
		out = append(out, set)
	}
	return out
}

// setComment is the catalogue comment of a set by its base name.
func setComment(base string) string {
	for _, s := range setCatalogue {
		if s.name == base {
			return s.comment
		}
	}
	return ""
}

func setFamily(family v1.IPFamily) string {
	if family == v1.IPv6Protocol {
		return "inet6"
	}
	return "inet"
}

// The Entry* functions spell entries as `ipset save` prints them, so that the reconciler can
// compare desired entries with the kernel's by string: numeric host (glibc's inet_ntop, which
// for IPv6 is the RFC 5952 form netip prints), protocol name from /etc/protocols, numeric port.

// EntryIP is a hash:ip entry.
func EntryIP(ip netip.Addr) string { return ip.Unmap().String() }

// EntryIPPort is a hash:ip,port entry: "10.96.0.1,tcp:443", "fd00::1,sctp:30001".
func EntryIPPort(ip netip.Addr, protocol v1.Protocol, port int) string {
	return EntryIP(ip) + "," + protoPort(protocol, port)
}

// EntryIPPortIP is a hash:ip,port,ip entry: "10.0.0.5,tcp:8080,10.0.0.5".
func EntryIPPortIP(ip netip.Addr, protocol v1.Protocol, port int, ip2 netip.Addr) string {
	return EntryIPPort(ip, protocol, port) + "," + EntryIP(ip2)
}

// EntryIPPortNet is a hash:ip,port,net entry. ipset prints a host-length network without its
// prefix length ("1.2.3.4", not "1.2.3.4/32"), and always the network address.
func EntryIPPortNet(ip netip.Addr, protocol v1.Protocol, port int, n netip.Prefix) string {
	if n.Addr().Is4In6() && n.Bits() >= 96 {
		n = netip.PrefixFrom(n.Addr().Unmap(), n.Bits()-96)
	}
	n = n.Masked()
	s := n.Addr().String()
	if n.Bits() != n.Addr().BitLen() {
		s += "/" + strconv.Itoa(n.Bits())
	}
	return EntryIPPort(ip, protocol, port) + "," + s
}

// EntryPort is a bitmap:port entry.
func EntryPort(port int) string { return strconv.Itoa(port) }

func protoPort(protocol v1.Protocol, port int) string {
	return strings.ToLower(string(protocol)) + ":" + strconv.Itoa(port)
}

// AddrOf converts a net.IP from the change trackers; IPv4 comes back as a 4-byte address.
func AddrOf(ip net.IP) (netip.Addr, bool) {
	a, ok := netip.AddrFromSlice(ip)
	return a.Unmap(), ok
}

// prefixOf converts a *net.IPNet from the change trackers.
func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := AddrOf(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, bits := n.Mask.Size()
	if bits == 0 {
		return netip.Prefix{}, false
	}
	ones -= bits - a.BitLen()
	if ones < 0 {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, ones).Masked(), true
}

// InFamily reports whether an address belongs to the family the proxier works in.
func InFamily(family v1.IPFamily, a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	if family == v1.IPv6Protocol {
		return a.Is6() && !a.Is4In6()
	}
	return a.Is4()
}
