package desired

import (
	"net"
	"net/netip"

	proxyutil "k8s.io/kubernetes/pkg/proxy/util"
)

// SelectNodePortAddresses computes NodeContext.NodePortAddresses from addresses the proxier
// has already read, the way upstream picks the addresses it creates NodePort virtual servers
// on:
//   - nodePortAddresses matching everything: localExceptDummy, the node's addresses of the
//     family on every interface but kube-ipvs0, without loopback and IPv6 link-local (the same
//     list as NodeContext.LocalAddresses);
//   - otherwise: every interface address (kube-ipvs0 included, as upstream does not leave it
//     out) inside one of the CIDRs, minus loopback.
//
// npa is proxyutil.NewNodePortAddresses(family, config.NodePortAddresses).
func SelectNodePortAddresses(npa *proxyutil.NodePortAddresses, localExceptDummy, allInterfaceAddrs []netip.Addr) []netip.Addr {
	if npa.MatchAll() {
		return append([]netip.Addr(nil), localExceptDummy...)
	}
	// GetNodeIPs does the CIDR matching; feed it the addresses instead of the host's.
	ips, err := npa.GetNodeIPs(staticInterfacer(allInterfaceAddrs))
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, ip := range ips {
		if ip.IsLoopback() {
			continue
		}
		if a, ok := AddrOf(ip); ok {
			out = append(out, a)
		}
	}
	return out
}

// staticInterfacer answers InterfaceAddrs with a fixed list, keeping selection free of I/O.
type staticInterfacer []netip.Addr

func (s staticInterfacer) InterfaceAddrs() ([]net.Addr, error) {
	out := make([]net.Addr, 0, len(s))
	for _, a := range s {
		out = append(out, &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(a.BitLen(), a.BitLen())})
	}
	return out, nil
}
