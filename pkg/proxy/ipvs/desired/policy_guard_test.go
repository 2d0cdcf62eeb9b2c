package desired

import (
	"net/netip"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/internal/fixture"
)

// guardCtx4 is node-a (192.168.0.10 and 10.0.0.10) in a cluster where node-b is 192.168.0.11
// (also 203.0.113.50 as its ExternalIP), the apiservers are node-a:6443 and an external
// 172.16.0.1:443, 10.10.0.0/24 is protected and externalIPs must come from 198.51.100.0/24.
func guardCtx4() *NodeContext {
	c := ctx4()
	c.OtherNodeAddresses = map[netip.Addr]string{fixture.Addr("192.168.0.11"): "node-b", fixture.Addr("203.0.113.50"): "node-b"}
	c.APIServerEndpoints = map[netip.AddrPort]bool{
		netip.MustParseAddrPort("192.168.0.10:6443"): true,
		netip.MustParseAddrPort("172.16.0.1:443"):    true,
	}
	c.APIServerAddresses = map[netip.Addr]bool{fixture.Addr("192.168.0.10"): true, fixture.Addr("172.16.0.1"): true}
	c.ProtectedCIDRs = []netip.Prefix{netip.MustParsePrefix("10.10.0.0/24")}
	c.RestrictExternalIPs = true
	c.ExternalIPCIDRs = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("10.10.0.0/16")}
	return c
}

func TestGuardAddress(t *testing.T) {
	v4, v6, dual := []v1.IPFamily{v1.IPv4Protocol}, []v1.IPFamily{v1.IPv6Protocol}, []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol}
	open := ctx4 // no cluster addresses, no CIDRs: only bad values are refused
	cases := []struct {
		name     string
		ctx      func() *NodeContext
		source   AddressSource
		address  string
		port     int
		families []v1.IPFamily
		want     Reason
		detail   string
	}{
		// Bad values, whatever the configuration.
		{"unparseable", open, SourceExternalIP, "not-an-ip", 80, v4, ReasonInvalid, ""},
		{"empty", open, SourceExternalIP, "", 80, v4, ReasonInvalid, ""},
		{"CIDR is not an address", open, SourceLoadBalancer, "198.51.100.0/24", 80, v4, ReasonInvalid, ""},
		{"IPv4-mapped IPv6", open, SourceExternalIP, "::ffff:198.51.100.1", 80, v4, ReasonWrongFamily, ""},
		{"IPv6 on an IPv4-only Service", open, SourceExternalIP, "2001:db8::1", 80, v4, ReasonWrongFamily, ""},
		{"IPv4 on an IPv6-only Service", ctx6, SourceLoadBalancer, "198.51.100.1", 80, v6, ReasonWrongFamily, ""},
		{"IPv6 of a dual-stack Service is the other proxier's", open, SourceExternalIP, "2001:db8::1", 80, dual, reasonOtherFamily, ""},
		{"unspecified", open, SourceExternalIP, "0.0.0.0", 80, v4, ReasonUnspecified, ""},
		{"loopback", open, SourceExternalIP, "127.0.0.1", 80, v4, ReasonLoopback, ""},
		{"loopback range", open, SourceLoadBalancer, "127.1.2.3", 80, v4, ReasonLoopback, ""},
		{"link-local", open, SourceExternalIP, "169.254.169.254", 80, v4, ReasonLinkLocal, ""},
		{"multicast", open, SourceExternalIP, "224.0.0.1", 80, v4, ReasonMulticast, ""},
		{"broadcast", open, SourceExternalIP, "255.255.255.255", 80, v4, ReasonMulticast, ""},
		{"bad value beats the allow-list", guardCtx4, SourceExternalIP, "127.0.0.1", 80, v4, ReasonLoopback, ""},
		// Good values.
		{"ordinary externalIP", open, SourceExternalIP, "198.51.100.1", 80, v4, "", ""},
		{"ordinary LB IP", guardCtx4, SourceLoadBalancer, "203.0.113.7", 80, v4, "", ""},
		{"leading zeros, as upstream parses them", open, SourceExternalIP, "198.051.100.001", 80, v4, "", ""},
		{"allowed externalIP", guardCtx4, SourceExternalIP, "198.51.100.1", 80, v4, "", ""},
		// Cluster addresses.
		{"another node's address", guardCtx4, SourceExternalIP, "192.168.0.11", 80, v4, ReasonNodeAddress, "node-b"},
		{"another node's ExternalIP as LB IP", guardCtx4, SourceLoadBalancer, "203.0.113.50", 80, v4, ReasonNodeAddress, "node-b"},
		{"own address: upstream's behaviour", guardCtx4, SourceLoadBalancer, "10.0.0.10", 6443, v4, "", ""},
		{"own address another node also lists: local wins", func() *NodeContext {
			c := guardCtx4()
			c.OtherNodeAddresses[fixture.Addr("10.0.0.10")] = "node-b"
			return c
		}, SourceLoadBalancer, "10.0.0.10", 80, v4, "", ""},
		{"apiserver on this node, its port", guardCtx4, SourceExternalIP, "192.168.0.10", 6443, v4, ReasonAPIServer, "192.168.0.10:6443"},
		{"apiserver on this node, its port, as LB IP", guardCtx4, SourceLoadBalancer, "192.168.0.10", 6443, v4, ReasonAPIServer, "192.168.0.10:6443"},
		{"apiserver on this node, another port", func() *NodeContext {
			c := guardCtx4()
			c.RestrictExternalIPs = false
			return c
		}, SourceExternalIP, "192.168.0.10", 8888, v4, "", ""},
		{"apiserver elsewhere, any port", guardCtx4, SourceLoadBalancer, "172.16.0.1", 80, v4, ReasonAPIServer, "172.16.0.1"},
		{"apiserver on another node, any port", func() *NodeContext {
			c := guardCtx4()
			c.APIServerAddresses[fixture.Addr("192.168.0.11")] = true
			return c
		}, SourceLoadBalancer, "192.168.0.11", 80, v4, ReasonAPIServer, "192.168.0.11"},
		// CIDRs.
		{"protected CIDR", guardCtx4, SourceLoadBalancer, "10.10.0.5", 80, v4, ReasonProtected, "10.10.0.0/24"},
		{"protected CIDR holds even this node's address", func() *NodeContext {
			c := guardCtx4()
			c.ProtectedCIDRs = append(c.ProtectedCIDRs, netip.MustParsePrefix("10.0.0.0/24"))
			return c
		}, SourceLoadBalancer, "10.0.0.10", 80, v4, ReasonProtected, "10.0.0.0/24"},
		{"externalIP outside the allow-list", guardCtx4, SourceExternalIP, "203.0.113.7", 80, v4, ReasonNotAllowed, ""},
		{"LB IP outside the allow-list is fine", guardCtx4, SourceLoadBalancer, "203.0.113.8", 80, v4, "", ""},
		{"allow-list with no CIDR of the family allows nothing", func() *NodeContext {
			c := ctx4()
			c.RestrictExternalIPs = true
			return c
		}, SourceExternalIP, "198.51.100.1", 80, v4, ReasonNotAllowed, ""},
		// IPv6.
		{"IPv6 another node", func() *NodeContext {
			c := ctx6()
			c.OtherNodeAddresses = map[netip.Addr]string{fixture.Addr("fd00:1::11"): "node-b"}
			return c
		}, SourceExternalIP, "fd00:1::11", 80, v6, ReasonNodeAddress, "node-b"},
		{"IPv6 link-local", ctx6, SourceExternalIP, "fe80::1", 80, v6, ReasonLinkLocal, ""},
		{"IPv6 loopback", ctx6, SourceExternalIP, "::1", 80, v6, ReasonLoopback, ""},
		{"IPv6 unspecified", ctx6, SourceExternalIP, "::", 80, v6, ReasonUnspecified, ""},
		{"IPv6 multicast", ctx6, SourceExternalIP, "ff02::1", 80, v6, ReasonMulticast, ""},
		{"IPv4 of a dual-stack Service in the IPv6 proxier", ctx6, SourceExternalIP, "198.51.100.1", 80, dual, reasonOtherFamily, ""},
		{"IPv6 ordinary", ctx6, SourceLoadBalancer, "2001:db8::7", 80, v6, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := GuardAddress(c.ctx(), AddressCheck{Source: c.source, Address: c.address, Port: c.port, ServiceFamilies: c.families})
			if got.Reason != c.want || got.Detail != c.detail {
				t.Errorf("GuardAddress(%s %q port %d) = %q (%q), want %q (%q)", c.source, c.address, c.port, got.Reason, got.Detail, c.want, c.detail)
			}
			if got.Reason == "" && !got.Addr.IsValid() {
				t.Errorf("served without an address")
			}
		})
	}
}
