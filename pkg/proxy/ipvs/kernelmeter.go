package ipvs

import (
	"bytes"
	"net/netip"
	"sync"
	"time"

	utiliptables "k8s.io/kubernetes/pkg/util/iptables"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipset"
	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/netdev"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/nftgeneration"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/sockdiag"
)

// The proxier counts its kernel round trips (netlink requests and process launches) and times
// them by kind, for the kernel_operations_total metric and each sync's log line. Counting
// happens here, once, around the adapters the proxier and the reconciler call, so no code that
// does I/O keeps books, and tests read the same numbers production reports.

// kernelMeter holds the counts and times; it is safe for concurrent use.
type kernelMeter struct {
	mu            sync.Mutex
	reads, writes int
	times         durations
}

// meterCounts are a meter's counts at one moment.
type meterCounts struct{ reads, writes int }

func (m *kernelMeter) counts() meterCounts {
	m.mu.Lock()
	defer m.mu.Unlock()
	return meterCounts{m.reads, m.writes}
}

// record adds n reads (or writes) of kind step that took since start.
func (m *kernelMeter) record(step string, read bool, n int, start time.Time) {
	d := time.Since(start)
	m.mu.Lock()
	defer m.mu.Unlock()
	if read {
		m.reads += n
	} else {
		m.writes += n
	}
	m.times.add(step, d)
}

// takeTimes returns the time of the operations since the last call by kind
// (durations.String), and starts over.
func (m *kernelMeter) takeTimes() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.times.String()
	m.times = durations{}
	return s
}

// The kinds of operation, as the sync's log line names them.
const (
	stepReadAddrs    = "read-addrs"
	stepReadIPVS     = "read-ipvs"
	stepReadIPSets   = "read-ipsets"
	stepReadIPTables = "read-iptables"
	stepReadNode     = "read-node"
	stepIPVS         = "ipvs"
	stepIPSets       = "ipsets"
	stepIPTables     = "iptables"
	stepBind         = "bind"
	stepUnbind       = "unbind"
)

// The decorators: each counts the calls a sync makes and passes the others through.
type (
	// Flush and SetTimeouts, made at start and by --cleanup, pass through uncounted.
	meteredIPVS struct {
		kipvs.Interface
		m *kernelMeter
	}

	// WatchAddresses, a subscription, passes through uncounted.
	meteredNetdev struct {
		netdev.Interface
		m *kernelMeter
	}

	meteredIPSet struct {
		ipset.Interface
		m *kernelMeter
	}

	// A sync calls SaveInto and RestoreAll; --cleanup's calls pass through.
	meteredIPTables struct {
		utiliptables.Interface
		m *kernelMeter
	}

	meteredRulesetGen struct {
		nftgeneration.Reader
		m *kernelMeter
	}

	meteredListeners struct {
		sockdiag.Interface
		m *kernelMeter
	}
)

func (w meteredIPVS) ListVirtualServers() ([]kipvs.VirtualServer, error) {
	defer w.m.record(stepReadIPVS, true, 1, time.Now())
	return w.Interface.ListVirtualServers()
}

func (w meteredIPVS) ListRealServers(k kipvs.Key) ([]kipvs.RealServerStatus, error) {
	defer w.m.record(stepReadIPVS, true, 1, time.Now())
	return w.Interface.ListRealServers(k)
}

func (w meteredIPVS) AddVirtualServer(vs kipvs.VirtualServer) error {
	defer w.m.record(stepIPVS, false, 1, time.Now())
	return w.Interface.AddVirtualServer(vs)
}

func (w meteredIPVS) UpdateVirtualServer(vs kipvs.VirtualServer) error {
	defer w.m.record(stepIPVS, false, 1, time.Now())
	return w.Interface.UpdateVirtualServer(vs)
}

func (w meteredIPVS) DeleteVirtualServer(k kipvs.Key) error {
	defer w.m.record(stepIPVS, false, 1, time.Now())
	return w.Interface.DeleteVirtualServer(k)
}

func (w meteredIPVS) AddRealServer(k kipvs.Key, rs kipvs.RealServer) error {
	defer w.m.record(stepIPVS, false, 1, time.Now())
	return w.Interface.AddRealServer(k, rs)
}

// Add counts each addition, as the fakes do: the batch is what the kernel does, one object at
// a time.
func (w meteredIPVS) Add(adds []kipvs.Addition, refused func(int, error)) error {
	defer w.m.record(stepIPVS, false, len(adds), time.Now())
	return w.Interface.Add(adds, refused)
}

func (w meteredIPVS) UpdateRealServer(k kipvs.Key, rs kipvs.RealServer) error {
	defer w.m.record(stepIPVS, false, 1, time.Now())
	return w.Interface.UpdateRealServer(k, rs)
}

func (w meteredIPVS) DeleteRealServer(k kipvs.Key, rs kipvs.RealServer) error {
	defer w.m.record(stepIPVS, false, 1, time.Now())
	return w.Interface.DeleteRealServer(k, rs)
}

func (w meteredNetdev) EnsureDummy(name string) (bool, error) {
	defer w.m.record(stepBind, false, 1, time.Now())
	return w.Interface.EnsureDummy(name)
}

func (w meteredNetdev) ListAddresses(link string) ([]netip.Addr, error) {
	defer w.m.record(stepReadAddrs, true, 1, time.Now())
	return w.Interface.ListAddresses(link)
}

func (w meteredNetdev) AddAddresses(link string, addrs []netip.Addr, refused func(int, error)) error {
	defer w.m.record(stepBind, false, len(addrs), time.Now())
	return w.Interface.AddAddresses(link, addrs, refused)
}

func (w meteredNetdev) DeleteAddresses(link string, addrs []netip.Addr, refused func(int, error)) error {
	defer w.m.record(stepUnbind, false, len(addrs), time.Now())
	return w.Interface.DeleteAddresses(link, addrs, refused)
}

func (w meteredNetdev) LocalAddresses(exclude string) ([]netip.Addr, error) {
	defer w.m.record(stepReadNode, true, 1, time.Now())
	return w.Interface.LocalAddresses(exclude)
}

func (w meteredNetdev) VXLANPorts() ([]uint16, error) {
	defer w.m.record(stepReadNode, true, 1, time.Now())
	return w.Interface.VXLANPorts()
}

func (w meteredIPSet) List(names ...string) ([]ipset.Content, error) {
	defer w.m.record(stepReadIPSets, true, 1, time.Now())
	return w.Interface.List(names...)
}

func (w meteredIPSet) EntryCounts() (map[string]int, error) {
	defer w.m.record(stepReadIPSets, true, 1, time.Now())
	return w.Interface.EntryCounts()
}

// Apply is one write: one `ipset restore`, whatever the batch holds.
func (w meteredIPSet) Apply(ops []ipset.Op) error {
	defer w.m.record(stepIPSets, false, 1, time.Now())
	return w.Interface.Apply(ops)
}

func (w meteredIPTables) SaveInto(t utiliptables.Table, b *bytes.Buffer) error {
	defer w.m.record(stepReadIPTables, true, 1, time.Now())
	return w.Interface.SaveInto(t, b)
}

func (w meteredIPTables) RestoreAll(d []byte, f utiliptables.FlushFlag, c utiliptables.RestoreCountersFlag) error {
	defer w.m.record(stepIPTables, false, 1, time.Now())
	return w.Interface.RestoreAll(d, f, c)
}

func (w meteredRulesetGen) Generation() (uint32, error) {
	defer w.m.record(stepReadIPTables, true, 1, time.Now())
	return w.Reader.Generation()
}

func (w meteredListeners) Listeners() ([]sockdiag.Listener, error) {
	defer w.m.record(stepReadNode, true, 1, time.Now())
	return w.Interface.Listeners()
}

// metered returns k with every adapter a sync calls counted by m. The optional readers stay
// nil when they are.
func (k Kernel) metered(m *kernelMeter) Kernel {
	out := k
	out.IPVS, out.Netdev = meteredIPVS{k.IPVS, m}, meteredNetdev{k.Netdev, m}
	out.IPSet, out.IPTables = meteredIPSet{k.IPSet, m}, meteredIPTables{k.IPTables, m}
	if k.RulesetGen != nil {
		out.RulesetGen = meteredRulesetGen{k.RulesetGen, m}
	}
	if k.Listeners != nil {
		out.Listeners = meteredListeners{k.Listeners, m}
	}
	return out
}
