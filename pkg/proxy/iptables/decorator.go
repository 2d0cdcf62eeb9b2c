package iptables

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	utiliptables "k8s.io/kubernetes/pkg/util/iptables"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/forkconfig"
)

// defaultPeriod stands in for a syncPeriod that is not positive (validation forbids it).
const defaultPeriod = 30 * time.Second

// VXLANPorts caches the destination ports of the node's VXLAN links, so that the restores of
// both families share one netlink dump.
type VXLANPorts struct {
	read func() ([]uint16, error)
	now  func() time.Time

	mu    sync.Mutex
	ports []uint16
	at    time.Time // of the last read attempt; zero before the first
	reads int
}

// NewVXLANPorts caches what read returns (netdev.Interface.VXLANPorts on a real node).
func NewVXLANPorts(read func() ([]uint16, error)) *VXLANPorts {
	return &VXLANPorts{read: read, now: time.Now}
}

// Get returns the ports, sorted, reading them first when the last read is maxAge old or
// older. A failed read keeps the previous ports (none before a first success); it is retried
// after maxAge too, so a persistent error is logged once per maxAge, not once per restore.
func (v *VXLANPorts) Get(maxAge time.Duration) []uint16 {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now()
	if !v.at.IsZero() && now.Sub(v.at) < maxAge {
		return v.ports
	}
	v.at = now
	v.reads++
	ports, err := v.read()
	if err != nil {
		klog.Background().Error(err, "Reading the node's VXLAN links failed; keeping the VXLAN ports read before", "ports", v.ports)
		return v.ports
	}
	if ports = SortedPorts(ports); !slices.Equal(ports, v.ports) {
		klog.Background().V(2).Info("VXLAN ports changed", "previous", v.ports, "current", ports)
		v.ports = ports
	}
	return v.ports
}

// WrapAll wraps the iptables interface of each family (see Wrap); the families share one
// VXLAN port cache over read.
func WrapAll(ipts map[v1.IPFamily]utiliptables.Interface, mode forkconfig.RandomFully, read func() ([]uint16, error), syncPeriod time.Duration) map[v1.IPFamily]utiliptables.Interface {
	ports := NewVXLANPorts(read)
	out := make(map[v1.IPFamily]utiliptables.Interface, len(ipts))
	for family, ipt := range ipts {
		out[family] = Wrap(ipt, mode, ports, syncPeriod)
	}
	return out
}

// Wrap returns ipt made to follow --masquerade-random-fully mode for upstream's iptables
// proxier: ipt itself for always (upstream's rules exactly); for never and auto, an
// interface whose Restore and RestoreAll rewrite the nat table's KUBE-POSTROUTING rules as
// Rewrite does, everything else passing through.
//
// In auto mode the VXLAN ports are read at most every syncPeriod/2 for a restore, and
// upstream's proxier, which restores only on changes (or once an hour), is not relied on to
// notice a VXLAN link that appears or goes: from the moment the proxier starts Monitor,
// every syncPeriod/2 the ports are read again and, when they changed, KUBE-POSTROUTING alone
// is restored again from the last rules the proxier wrote. A change is picked up within
// 3/4 syncPeriod, with one iptables-restore of one chain.
func Wrap(ipt utiliptables.Interface, mode forkconfig.RandomFully, ports *VXLANPorts, syncPeriod time.Duration) utiliptables.Interface {
	if ipt == nil || (mode != forkconfig.RandomFullyNever && mode != forkconfig.RandomFullyAuto) {
		return ipt
	}
	if syncPeriod <= 0 {
		syncPeriod = defaultPeriod
	}
	return &decorator{
		Interface: ipt,
		mode:      mode,
		ports:     ports,
		interval:  syncPeriod / 2,
		logger:    klog.Background().WithValues("ipFamily", ipt.Protocol()),
	}
}

type decorator struct {
	utiliptables.Interface
	mode     forkconfig.RandomFully
	ports    *VXLANPorts // nil unless auto
	interval time.Duration
	logger   klog.Logger

	// mu serializes restores, ours and the proxier's.
	mu sync.Mutex
	// postrouting is KUBE-POSTROUTING as the proxier last restored it (before the rewrite),
	// nil when the proxier has not written it or has deleted it; rendered are the ports its
	// rewrite in the kernel was made with.
	postrouting []string
	rendered    []uint16
}

func (d *decorator) Restore(table utiliptables.Table, data []byte, flush utiliptables.FlushFlag, counters utiliptables.RestoreCountersFlag) error {
	if table != utiliptables.TableNAT {
		return d.Interface.Restore(table, data, flush, counters)
	}
	return d.restore(data, string(table), func(b []byte) error { return d.Interface.Restore(table, b, flush, counters) })
}

func (d *decorator) RestoreAll(data []byte, flush utiliptables.FlushFlag, counters utiliptables.RestoreCountersFlag) error {
	return d.restore(data, "", func(b []byte) error { return d.Interface.RestoreAll(b, flush, counters) })
}

func (d *decorator) restore(data []byte, table string, do func([]byte) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var ports []uint16
	if d.mode == forkconfig.RandomFullyAuto && bytes.Contains(data, []byte(PostroutingChain)) {
		ports = d.ports.Get(d.interval)
	}
	rw := rewriteInput(data, table, d.mode, ports)
	if err := do(rw.out); err != nil {
		return mapParseError(err, rw)
	}
	switch {
	case rw.deleted:
		d.postrouting, d.rendered = nil, nil
	case rw.flushed:
		d.postrouting, d.rendered = rw.postrouting, ports
	}
	return nil
}

// Monitor starts, in auto mode, the VXLAN watch that lasts until stopCh is closed, then
// runs the wrapped Monitor. Upstream's proxier calls it once, in a goroutine, when it starts.
func (d *decorator) Monitor(canary utiliptables.Chain, tables []utiliptables.Table, reloadFunc func(), interval time.Duration, stopCh <-chan struct{}) {
	if d.mode == forkconfig.RandomFullyAuto {
		go d.watchVXLAN(stopCh)
	}
	d.Interface.Monitor(canary, tables, reloadFunc, interval, stopCh)
}

func (d *decorator) watchVXLAN(stopCh <-chan struct{}) {
	t := time.NewTicker(d.interval)
	defer t.Stop()
	for {
		select {
		case <-stopCh:
			return
		case <-t.C:
			_ = d.refresh()
		}
	}
}

// refresh reads the VXLAN ports (unless the other family just did) and, when they are not
// the ones KUBE-POSTROUTING was last written with, restores that chain alone.
func (d *decorator) refresh() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	ports := d.ports.Get(d.interval / 2)
	if d.postrouting == nil || slices.Equal(ports, d.rendered) {
		return nil
	}
	var b bytes.Buffer
	b.WriteString("*nat\n:" + PostroutingChain + " - [0:0]\n")
	for _, l := range d.postrouting {
		b.WriteString(l + "\n")
	}
	b.WriteString("COMMIT\n")
	rw := rewriteInput(b.Bytes(), "", d.mode, ports)
	if err := d.Interface.RestoreAll(rw.out, utiliptables.NoFlushTables, utiliptables.RestoreCounters); err != nil {
		d.logger.Error(mapParseError(err, rw), "Rewriting KUBE-POSTROUTING for new VXLAN ports failed; will retry", "ports", ports)
		return err
	}
	d.logger.Info("VXLAN ports changed: rewrote KUBE-POSTROUTING", "previous", d.rendered, "current", ports)
	d.rendered = ports
	return nil
}

// parseError is an iptables-restore parse error moved back to the line of the input before
// the rewrite, which is the text upstream's proxier logs the failing lines from.
type parseError struct {
	err  utiliptables.ParseError
	line int
}

func (e parseError) Line() int { return e.line }
func (e parseError) Error() string {
	return fmt.Sprintf("%s(line %d before the --masquerade-random-fully rewrite)", e.err.Error(), e.line)
}

func mapParseError(err error, rw rewrite) error {
	// Upstream's proxier type-asserts ParseError (it does not unwrap), so return one.
	pErr, ok := err.(utiliptables.ParseError)
	if !ok || !rw.changed {
		return err
	}
	line := pErr.Line()
	if line >= 1 && line <= len(rw.origLine) {
		line = rw.origLine[line-1]
	}
	return parseError{err: pErr, line: line}
}
