package ipvs

import (
	"fmt"
	"net/netip"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/kaddr"
)

// Protocol numbers as the kernel stores them (IPPROTO_*).
const (
	protoTCP  = 6
	protoUDP  = 17
	protoSCTP = 132
)

func protocolNumber(p Protocol) (uint16, error) {
	switch p {
	case TCP:
		return protoTCP, nil
	case UDP:
		return protoUDP, nil
	case SCTP:
		return protoSCTP, nil
	}
	return 0, fmt.Errorf("unsupported IPVS protocol %q", p)
}

func protocolName(n uint16) (Protocol, bool) {
	switch n {
	case protoTCP:
		return TCP, true
	case protoUDP:
		return UDP, true
	case protoSCTP:
		return SCTP, true
	}
	return "", false
}

// validAddr: see kaddr.Check.
func validAddr(a netip.Addr) error { return kaddr.Check(a) }

func validKey(k Key) error {
	if err := validAddr(k.Address); err != nil {
		return fmt.Errorf("virtual server %s: %w", k, err)
	}
	if _, err := protocolNumber(k.Protocol); err != nil {
		return fmt.Errorf("virtual server %s: %w", k, err)
	}
	return nil
}

// validRealServer also rejects a family different from the virtual server's: with masquerade
// forwarding the kernel cannot mix families (it accepts them only for tunnels).
func validRealServer(vs Key, rs RealServer) error {
	if err := validAddr(rs.Address); err != nil {
		return fmt.Errorf("real server %s: %w", rs, err)
	}
	if rs.Address.Is4() != vs.Address.Is4() {
		return fmt.Errorf("real server %s: family differs from virtual server %s", rs, vs)
	}
	return nil
}
