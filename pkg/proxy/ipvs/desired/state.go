// Package desired is the IPVS proxier's desired state: a pure function of a service port, its
// endpoints and the node (NodeContext) giving the virtual servers with their real servers, the
// addresses bound to kube-ipvs0, the ipset entries, and the iptables rules of our chains, with
// the fork's policies (LB binding, address guard, masquerade). It does no I/O and imports no
// kernel adapter (hack/check-imports.sh): kernel objects are named by pkg/kernel/objects.
package desired

import (
	"net/netip"

	v1 "k8s.io/api/core/v1"
	"k8s.io/kubernetes/pkg/proxy"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/objects"
)

// The desired state is a pure function of a service port, its endpoints and the node's context.
// It does no I/O; the reconciler diffs it against its cache of the kernel and writes the change.
// Fork policies (LB binding, masquerade, address guard) plug in through NodeContext.

// VirtualServerState is one IPVS virtual server with the real servers it should have.
type VirtualServerState struct {
	VirtualServer objects.VirtualServer
	RealServers   []objects.RealServer
}

// ServicePortState is every kernel object one service port needs in one IP family.
// Objects several service ports share (a cluster IP bound once for all ports of a service,
// the same ipset entry) are reference-counted by the reconciler.
type ServicePortState struct {
	VirtualServers []VirtualServerState
	// Bindings are the addresses to bind to kube-ipvs0.
	Bindings []netip.Addr
	// SetEntries are ipset entries, by set name, in `ipset save` spelling.
	SetEntries map[string][]string
	// Decisions are what the fork's policies did differently from upstream: addresses the
	// guard refused, LB ingress IPs left unbound by policy, an invalid annotation. Nothing
	// above holds anything for those addresses. The proxier reports them when they change.
	Decisions []AddressDecision
}

// NodeContext is everything about this node and the configuration that the desired state of a
// service port depends on, for one IP family.
type NodeContext struct {
	Family   v1.IPFamily
	NodeName string
	// TopologyLabels are the node's labels used for topology-aware routing.
	TopologyLabels map[string]string
	// NodePortAddresses are the local addresses NodePort virtual servers are created on, after
	// the nodePortAddresses filter (kube-ipvs0's addresses excluded).
	NodePortAddresses []netip.Addr
	// Scheduler is --ipvs-scheduler ("" is upstream's default, rr).
	Scheduler string
	// NodeIP is the node's primary address in Family (invalid if it has none). A load balancer
	// with loadBalancerSourceRanges stays reachable from the node only if a range holds it.
	NodeIP netip.Addr
	// LocalAddresses are the node's addresses in Family on every interface but kube-ipvs0,
	// without loopback and IPv6 link-local ones. An external IP or load balancer IP that is
	// one of them is not bound to kube-ipvs0.
	LocalAddresses map[netip.Addr]bool
	// OwnNodeAddresses are this node's Node object's addresses in Family, some of which may
	// be on no interface (a cloud's external IP): they are this node's as much as
	// LocalAddresses, so never bound to kube-ipvs0.
	OwnNodeAddresses map[netip.Addr]bool
	// HostListeners are the sockets host processes listen on, by protocol and port
	// (policy_hostports.go).
	HostListeners HostListeners

	// Fork policies (policy_lbbinding.go, policy_guard.go); the zero values are upstream's.
	// LBIngressUnboundByDefault is --ipvs-bind-lb-ingress=false.
	LBIngressUnboundByDefault bool
	// OtherNodeAddresses are every other Node's addresses in Family, with the Node's name.
	OtherNodeAddresses map[netip.Addr]string
	// APIServerEndpoints are the endpoints of Service default/kubernetes in Family, and
	// APIServerAddresses their addresses.
	APIServerEndpoints map[netip.AddrPort]bool
	APIServerAddresses map[netip.Addr]bool
	// ProtectedCIDRs are --ipvs-protected-cidrs in Family.
	ProtectedCIDRs []netip.Prefix
	// RestrictExternalIPs is set when --ipvs-external-ip-cidrs is; ExternalIPCIDRs are its
	// CIDRs in Family (possibly none, which then allows no externalIP of Family).
	RestrictExternalIPs bool
	ExternalIPCIDRs     []netip.Prefix
	// ClusterIPs are every Service's cluster IPs in Family (counted by service port), and
	// ServiceCIDRs the service CIDRs in Family: never served as externalIPs or ingress IPs.
	ClusterIPs   map[netip.Addr]int
	ServiceCIDRs []netip.Prefix
}

// ServicePortInput is one service port with its endpoints, as the change trackers hold them.
type ServicePortInput struct {
	Name      proxy.ServicePortName
	Port      proxy.ServicePort
	Endpoints []proxy.Endpoint
}

// GlobalState is the per-family state that does not belong to one service: the iptables rules
// that match the ipsets (the sets themselves always exist: Sets is their catalogue).
type GlobalState struct {
	// IPTables is the input of `iptables-restore --noflush` for our chains in the nat and filter
	// tables (both tables in one text).
	IPTables []byte
}
