// Package ipvs is the kernel adapter for IPVS virtual and real servers: generic netlink requests
// on a socket of its own (pkg/kernel/internal/nlmsg) with value types that can be compared and used as map keys, so the reconciler can diff desired state
// against what the kernel holds.
package ipvs

import (
	"fmt"
	"time"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/objects"
)

// The value types live in pkg/kernel/objects, which the desired state imports without linking
// this adapter.
type (
	Protocol      = objects.Protocol
	Flags         = objects.Flags
	Key           = objects.Key
	VirtualServer = objects.VirtualServer
	RealServer    = objects.RealServer
)

// The protocols and the virtual server flags (pkg/kernel/objects says what each means).
const TCP, UDP, SCTP = objects.TCP, objects.UDP, objects.SCTP
const FlagPersistent, FlagHashed, FlagSchedSH1, FlagSchedSH2, FlagSchedSH3 = objects.FlagPersistent,
	objects.FlagHashed, objects.FlagSchedSH1, objects.FlagSchedSH2, objects.FlagSchedSH3

// An Addition is one object for Interface.Add to create: a virtual server, or, when
// IsRealServer, a real server of the virtual server with key VirtualServer.Key (the rest of
// VirtualServer is then ignored).
type Addition struct {
	VirtualServer VirtualServer
	RealServer    RealServer
	IsRealServer  bool
}

// VirtualServerAddition is the Addition of virtual server vs.
func VirtualServerAddition(vs VirtualServer) Addition { return Addition{VirtualServer: vs} }

// RealServerAddition is the Addition of real server rs to the virtual server with key vs.
func RealServerAddition(vs Key, rs RealServer) Addition {
	return Addition{VirtualServer: VirtualServer{Key: vs}, RealServer: rs, IsRealServer: true}
}

func (a Addition) String() string {
	if a.IsRealServer {
		return fmt.Sprintf("real server %s of %s", a.RealServer, a.VirtualServer.Key)
	}
	return fmt.Sprintf("virtual server %s", a.VirtualServer.Key)
}

// RealServerStatus is a real server as read back from the kernel, with its connection counts,
// which graceful termination needs.
type RealServerStatus struct {
	RealServer
	ActiveConnections   int
	InactiveConnections int
}

// Interface is what the proxier needs from IPVS. Implementations: Netlink (the kernel) and Fake.
type Interface interface {
	// ListVirtualServers dumps every virtual server of the network namespace (all families).
	ListVirtualServers() ([]VirtualServer, error)
	// ListRealServers dumps the real servers of one virtual server.
	ListRealServers(vs Key) ([]RealServerStatus, error)
	AddVirtualServer(vs VirtualServer) error
	UpdateVirtualServer(vs VirtualServer) error
	DeleteVirtualServer(vs Key) error
	AddRealServer(vs Key, rs RealServer) error
	// Add creates virtual and real servers, in order, in as few round trips to the kernel as it
	// can (a cold start adds every virtual and real server): a real server
	// may follow its virtual server in the same round trip. refused is called with the index
	// and the kernel's error (errno) of each addition the kernel refused; the others took
	// effect. A returned error means a round trip failed: which additions took effect is then
	// unknown.
	Add(adds []Addition, refused func(i int, err error)) error
	UpdateRealServer(vs Key, rs RealServer) error
	DeleteRealServer(vs Key, rs RealServer) error
	// Flush deletes every virtual server (used only by --cleanup).
	Flush() error
	// SetTimeouts sets the kernel's IPVS tcp, tcpfin and udp timeouts; a zero value is left as-is.
	SetTimeouts(tcp, tcpFin, udp time.Duration) error
}
