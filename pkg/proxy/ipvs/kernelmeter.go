package ipvs

import (
	"bytes"
	"net/netip"
	"strings"
	"sync"
	"time"

	utiliptables "k8s.io/kubernetes/pkg/util/iptables"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipset"
	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/netdev"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/nftgen"
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
	// steps are the kinds of operation in the order they first ran, took their time.
	steps []string
	took  []time.Duration
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
	for i, s := range m.steps {
		if s == step {
			m.took[i] += d
			return
		}
	}
	m.steps = append(m.steps, step)
	m.took = append(m.took, d)
}

// takeTimes returns "read-ipvs=1.2ms ipvs=3ms ..." for the operations since the last call, in
// the order they first ran, and starts over.
func (m *kernelMeter) takeTimes() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	for i, s := range m.steps {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s)
		b.WriteByte('=')
		b.WriteString(m.took[i].Round(100 * time.Microsecond).String())
	}
	m.steps, m.took = m.steps[:0], m.took[:0]
	return b.String()
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

// meteredIPVS counts the IPVS calls a sync makes (Flush and SetTimeouts, made at start and by
// --cleanup, pass through uncounted).
type meteredIPVS struct {
	kipvs.Interface
	m *kernelMeter
}

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

// meteredNetdev counts the link and address calls a sync makes (WatchAddresses, a
// subscription, passes through uncounted).
type meteredNetdev struct {
	netdev.Interface
	m *kernelMeter
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

type meteredIPSet struct {
	ipset.Interface
	m *kernelMeter
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

// meteredIPTables counts the two calls a sync makes; the others (--cleanup's) pass through.
type meteredIPTables struct {
	utiliptables.Interface
	m *kernelMeter
}

func (w meteredIPTables) SaveInto(t utiliptables.Table, b *bytes.Buffer) error {
	defer w.m.record(stepReadIPTables, true, 1, time.Now())
	return w.Interface.SaveInto(t, b)
}

func (w meteredIPTables) RestoreAll(d []byte, f utiliptables.FlushFlag, c utiliptables.RestoreCountersFlag) error {
	defer w.m.record(stepIPTables, false, 1, time.Now())
	return w.Interface.RestoreAll(d, f, c)
}

type meteredRulesetGen struct {
	nftgen.Reader
	m *kernelMeter
}

func (w meteredRulesetGen) Generation() (uint32, error) {
	defer w.m.record(stepReadIPTables, true, 1, time.Now())
	return w.Reader.Generation()
}

type meteredListeners struct {
	sockdiag.Interface
	m *kernelMeter
}

func (w meteredListeners) Listeners() ([]sockdiag.Listener, error) {
	defer w.m.record(stepReadNode, true, 1, time.Now())
	return w.Interface.Listeners()
}

// metered returns k with every adapter a sync calls counted by m (nil adapters stay nil).
func (k Kernel) metered(m *kernelMeter) Kernel {
	out := k
	if k.IPVS != nil {
		out.IPVS = meteredIPVS{k.IPVS, m}
	}
	if k.Netdev != nil {
		out.Netdev = meteredNetdev{k.Netdev, m}
	}
	if k.IPSet != nil {
		out.IPSet = meteredIPSet{k.IPSet, m}
	}
	if k.IPTables != nil {
		out.IPTables = meteredIPTables{k.IPTables, m}
	}
	if k.RulesetGen != nil {
		out.RulesetGen = meteredRulesetGen{k.RulesetGen, m}
	}
	if k.Listeners != nil {
		out.Listeners = meteredListeners{k.Listeners, m}
	}
	return out
}
