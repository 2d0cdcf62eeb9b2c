package desired

import (
	"net/netip"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	netutils "k8s.io/utils/net"
)

// The address guard keeps externalIPs and LoadBalancer ingress IPs that belong to someone
// else off this node's kernel. Upstream binds such an address to kube-ipvs0 on every node but
// its owner, which then routes it locally and can no longer reach the owner: a Service that
// names a control-plane node's address cuts every other node off the apiserver.

// AddressSource says where in a Service an address was written.
type AddressSource string

const (
	SourceExternalIP   AddressSource = "externalIP"
	SourceLoadBalancer AddressSource = "loadBalancerIngress"
	// SourceAnnotation marks a decision about an annotation rather than an address.
	SourceAnnotation AddressSource = "annotation"
	// SourceEndpoint marks a decision about an endpoint of an EndpointSlice.
	SourceEndpoint AddressSource = "endpoint"
	// SourceClusterIP marks a decision about the Service's own cluster IP.
	SourceClusterIP AddressSource = "clusterIP"
)

// Reason says why an address was not programmed as upstream would have programmed it.
type Reason string

// Refusals by the address guard: the address gets nothing in the kernel.
const (
	// ReasonInvalid: not an IP address.
	ReasonInvalid Reason = "invalid"
	// ReasonWrongFamily: an IPv4-mapped IPv6 address, or a family the Service does not have.
	ReasonWrongFamily Reason = "wrong-family"
	ReasonUnspecified Reason = "unspecified"
	ReasonLoopback    Reason = "loopback"
	ReasonLinkLocal   Reason = "link-local"
	ReasonMulticast   Reason = "multicast"
	// ReasonAPIServer: an apiserver endpoint's address (on its own node: its address and port).
	ReasonAPIServer Reason = "apiserver"
	// ReasonNodeAddress: an address of another Node.
	ReasonNodeAddress Reason = "node-address"
	// ReasonProtected: inside --ipvs-protected-cidrs.
	ReasonProtected Reason = "protected-cidr"
	// ReasonNotAllowed: an externalIP outside --ipvs-external-ip-cidrs.
	ReasonNotAllowed Reason = "not-allowed"
	// ReasonClusterIP: a Service's cluster IP (policy_serviceaddrs.go).
	ReasonClusterIP Reason = "cluster-ip"
	// ReasonServiceCIDR: inside a service CIDR.
	ReasonServiceCIDR Reason = "service-cidr"
	// ReasonHostListener: this node's address on a port a host process listens on.
	ReasonHostListener Reason = "host-listener"
)

// Decisions of the LoadBalancer binding policy that the proxier reports.
const (
	// ReasonUnboundByAnnotation: an LB ingress IP not bound because of the Service's annotation.
	ReasonUnboundByAnnotation Reason = "lb-unbound-annotation"
	// ReasonUnboundByDefault: an LB ingress IP not bound because of --ipvs-bind-lb-ingress=false.
	ReasonUnboundByDefault Reason = "lb-unbound-default"
	// ReasonInvalidAnnotation: kube-proxy-ipvs.io/bind-lb-ingress has an invalid value.
	ReasonInvalidAnnotation Reason = "invalid-annotation"
	// ReasonInvalidPort: an endpoint's port is outside 1-65535; the endpoint is skipped.
	ReasonInvalidPort Reason = "invalid-endpoint-port"
)

// reasonOtherFamily is not a refusal: the address is the other IP family's, whose proxier
// serves it.
const reasonOtherFamily Reason = "other-family"

// familyIndependent reasons are found the same way by the proxier of each family; only the
// proxier of the Service's primary family reports them.
func familyIndependent(r Reason) bool {
	return r == ReasonInvalid || r == ReasonWrongFamily || r == ReasonInvalidAnnotation
}

// AddressCheck is one address of a service port, as written in the Service.
type AddressCheck struct {
	Source  AddressSource
	Address string
	// Port is the service port (an apiserver endpoint on this node is refused only on its port)
	// and Protocol its protocol.
	Port     int
	Protocol v1.Protocol
	// ServiceFamilies are the Service's IP families.
	ServiceFamilies []v1.IPFamily
}

// GuardVerdict is the guard's answer: Reason is empty when the address may be served in
// ctx.Family, reasonOtherFamily when another family's proxier is to decide, or a refusal.
type GuardVerdict struct {
	Addr   netip.Addr
	Reason Reason
	// Detail names what the address belongs to: the node, or the apiserver endpoint.
	Detail string
}

// GuardAddress decides whether an externalIP or LoadBalancer ingress IP may be served on this
// node in ctx.Family. Addresses of this node (ctx.LocalAddresses) keep upstream's behaviour
// (served through IPVS, not bound) unless they are an apiserver endpoint on the same port,
// or inside the protected CIDRs, or not allowed as externalIPs.
func GuardAddress(ctx *NodeContext, c AddressCheck) GuardVerdict {
	raw := strings.TrimSpace(c.Address)
	ip := netutils.ParseIPSloppy(raw) // what upstream accepts, leading zeros included
	if ip == nil {
		return GuardVerdict{Reason: ReasonInvalid}
	}
	a, _ := netip.AddrFromSlice(ip)
	if a.Is4In6() && strings.Contains(raw, ":") {
		// "::ffff:192.0.2.1" is an IPv4 address written as IPv6.
		return GuardVerdict{Addr: a, Reason: ReasonWrongFamily}
	}
	a = a.Unmap()
	if !InFamily(ctx.Family, a) {
		fam := v1.IPv4Protocol
		if a.Is6() {
			fam = v1.IPv6Protocol
		}
		if slices.Contains(c.ServiceFamilies, fam) {
			return GuardVerdict{Addr: a, Reason: reasonOtherFamily}
		}
		return GuardVerdict{Addr: a, Reason: ReasonWrongFamily}
	}
	v := GuardVerdict{Addr: a, Reason: specialAddress(a)}
	if v.Reason != "" {
		return v
	}
	// Before the node's own addresses: a cluster IP is never this node's to give away.
	if ctx.ClusterIPs[a] > 0 {
		v.Reason = ReasonClusterIP
		return v
	}
	for _, p := range ctx.ServiceCIDRs {
		if p.Contains(a) {
			v.Reason, v.Detail = ReasonServiceCIDR, p.String()
			return v
		}
	}
	local := ctx.IsOwnAddress(a)
	if ctx.APIServerAddresses[a] {
		ep := netip.AddrPortFrom(a, uint16(c.Port))
		if !local {
			v.Reason, v.Detail = ReasonAPIServer, a.String()
			return v
		}
		if c.Port > 0 && c.Port <= 65535 && ctx.APIServerEndpoints[ep] {
			v.Reason, v.Detail = ReasonAPIServer, ep.String()
			return v
		}
	}
	if local {
		// Served on this node's own address, the port is taken from whatever host process
		// listens there (kubelet, sshd): it would be cut off.
		if l, ok := ctx.HostListeners.find(c.Protocol, a, c.Port); ok {
			v.Reason, v.Detail = ReasonHostListener, l.String()
			return v
		}
	}
	if node, ok := ctx.OtherNodeAddresses[a]; ok && !local {
		v.Reason, v.Detail = ReasonNodeAddress, node
		return v
	}
	for _, p := range ctx.ProtectedCIDRs {
		if p.Contains(a) {
			v.Reason, v.Detail = ReasonProtected, p.String()
			return v
		}
	}
	if c.Source == SourceExternalIP && ctx.RestrictExternalIPs && !prefixesContain(ctx.ExternalIPCIDRs, a) {
		v.Reason = ReasonNotAllowed
		return v
	}
	return v
}

// specialAddress is why a is no address a Service may have, or "".
func specialAddress(a netip.Addr) Reason {
	switch {
	case a.IsUnspecified():
		return ReasonUnspecified
	case a.IsLoopback():
		return ReasonLoopback
	case a.IsLinkLocalUnicast():
		return ReasonLinkLocal
	case a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return ReasonMulticast
	}
	return ""
}

func prefixesContain(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
