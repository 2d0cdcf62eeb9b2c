//go:build linux

package ipvs

import (
	"fmt"
	"net"
	"net/netip"

	libipvs "github.com/moby/ipvs"
	"golang.org/x/sys/unix"
)

// Netmasks as upstream kube-proxy programs them: a host mask, in the kernel's per-family spelling
// (a 32-bit mask for IPv4, a prefix length for IPv6).
const (
	netmaskV4 = 0xffffffff
	netmaskV6 = 128
)

func toService(vs VirtualServer) (*libipvs.Service, error) {
	s, err := keyToService(vs.Key)
	if err != nil {
		return nil, err
	}
	s.SchedName = vs.Scheduler
	s.Flags = uint32(vs.Flags &^ FlagHashed)
	s.Timeout = vs.Timeout
	return s, nil
}

// keyToService is enough to address an existing service (delete, destinations).
func keyToService(k Key) (*libipvs.Service, error) {
	if err := validKey(k); err != nil {
		return nil, err
	}
	proto, _ := protocolNumber(k.Protocol)
	s := &libipvs.Service{
		Address:  net.IP(k.Address.AsSlice()),
		Protocol: proto,
		Port:     k.Port,
	}
	if k.Address.Is4() {
		s.AddressFamily, s.Netmask = unix.AF_INET, netmaskV4
	} else {
		s.AddressFamily, s.Netmask = unix.AF_INET6, netmaskV6
	}
	return s, nil
}

// fromService converts a service read from the kernel. ok is false for services this adapter
// does not manage: firewall-mark services (no address) and unknown protocols.
func fromService(s *libipvs.Service) (vs VirtualServer, ok bool, err error) {
	if s.FWMark != 0 || s.Address == nil {
		return VirtualServer{}, false, nil
	}
	proto, known := protocolName(s.Protocol)
	if !known {
		return VirtualServer{}, false, nil
	}
	addr, err := addrFrom(s.Address, s.AddressFamily)
	if err != nil {
		return VirtualServer{}, false, err
	}
	return VirtualServer{
		Key:       Key{Address: addr, Protocol: proto, Port: s.Port},
		Scheduler: s.SchedName,
		Flags:     Flags(s.Flags) &^ FlagHashed,
		Timeout:   s.Timeout,
	}, true, nil
}

func toDestination(vs Key, rs RealServer) (*libipvs.Destination, error) {
	if err := validRealServer(vs, rs); err != nil {
		return nil, err
	}
	if rs.Weight < 0 {
		return nil, fmt.Errorf("real server %s: negative weight %d", rs, rs.Weight)
	}
	d := &libipvs.Destination{
		Address:         net.IP(rs.Address.AsSlice()),
		Port:            rs.Port,
		Weight:          rs.Weight,
		ConnectionFlags: libipvs.ConnectionFlagMasq,
		AddressFamily:   unix.AF_INET,
	}
	if rs.Address.Is6() {
		d.AddressFamily = unix.AF_INET6
	}
	return d, nil
}

func fromDestination(d *libipvs.Destination) (RealServerStatus, error) {
	addr, err := addrFrom(d.Address, d.AddressFamily)
	if err != nil {
		return RealServerStatus{}, err
	}
	return RealServerStatus{
		RealServer:          RealServer{Address: addr, Port: d.Port, Weight: d.Weight},
		ActiveConnections:   d.ActiveConnections,
		InactiveConnections: d.InactiveConnections,
	}, nil
}

// addrFrom turns moby's net.IP (16 bytes even for IPv4) into the family's canonical netip.Addr.
func addrFrom(ip net.IP, family uint16) (netip.Addr, error) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}, fmt.Errorf("bad address %v", ip)
	}
	if family == unix.AF_INET {
		a = a.Unmap()
		if !a.Is4() {
			return netip.Addr{}, fmt.Errorf("address %v is not IPv4", ip)
		}
	}
	return a, nil
}
