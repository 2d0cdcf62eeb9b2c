package bench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// A cold start's read-back says that the kernel is complete, but not since when: at S=10000 one
// read of /proc/PID/net/ip_vs takes up to half a minute, and it has to be spaced out so that it
// does not eat the CPU of the proxier it measures. The kernel trace below timestamps every write
// the kernel itself handled (probes on the entry of its netlink and sockopt handlers, in the
// ring buffer, read after the fact). A table that a read found complete has not changed since
// the last write before that read ended, so it was complete from the end of that write on: the
// figure is that write's start, early by one request's time (a fraction of a millisecond).
// Writes that did not help (a failed request, a timeout setting) can only make it later.
//
// Entry probes, not return probes: in the lab guest a return probe cost each IPVS write 131 us
// (11,001 writes by ipvsadm --restore: 6.04 s untraced, 7.48 s with return probes), an entry
// probe nothing measurable (5.89 s). The bench also times the floor's netlink batch with the
// trace off, which shows what it costs.

// traceGroup is the kprobe event group the bench owns (created and removed by it).
const traceGroup = "kpipvsbench"

// Probes, by event name. Every IPVS change from user space passes through one of the two IPVS
// handlers (netlink for both proxiers and the floor, setsockopt for an old ipvsadm); every IPv4
// address added through netlink passes through inet_rtm_newaddr.
var traceProbes = []struct{ event, symbol string }{
	{"ipvs_genl", "ip_vs:ip_vs_genl_set_cmd"},
	{"ipvs_sockopt", "ip_vs:do_ip_vs_set_ctl"},
	{"addr4_new", "inet_rtm_newaddr"},
}

var (
	ipvsWriteEvents = map[string]bool{"ipvs_genl": true, "ipvs_sockopt": true}
	addrWriteEvents = map[string]bool{"addr4_new": true}
)

// kernelTrace is the bench's use of tracefs.
type kernelTrace struct{ dir string }

// startKernelTrace mounts tracefs when needed, registers the probes on the CLOCK_MONOTONIC trace
// clock (the clock of monoNow) and starts tracing. The error says why the figures fall back to
// the read-back's end.
func startKernelTrace() (*kernelTrace, error) {
	dir := "/sys/kernel/tracing"
	if _, err := os.Stat(filepath.Join(dir, "kprobe_events")); err != nil {
		if err := unix.Mount("tracefs", dir, "tracefs", 0, ""); err != nil {
			return nil, fmt.Errorf("mounting tracefs: %w", err)
		}
	}
	k := &kernelTrace{dir: dir}
	k.stop()
	steps := [][2]string{{"tracing_on", "0"}, {"trace_clock", "mono"}, {"buffer_size_kb", "16384"}}
	for _, p := range traceProbes {
		steps = append(steps, [2]string{"kprobe_events", fmt.Sprintf("p:%s/%s %s", traceGroup, p.event, p.symbol)})
	}
	steps = append(steps, [2]string{"events/" + traceGroup + "/enable", "1"}, [2]string{"trace", ""}, [2]string{"tracing_on", "1"})
	for _, s := range steps {
		if err := k.write(s[0], s[1]); err != nil {
			k.stop()
			return nil, err
		}
	}
	return k, nil
}

func (k *kernelTrace) write(file, v string) error {
	flag := os.O_WRONLY | os.O_TRUNC
	if file == "kprobe_events" {
		flag = os.O_WRONLY | os.O_APPEND
	}
	f, err := os.OpenFile(filepath.Join(k.dir, file), flag, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(v + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("tracefs %s <- %q: %w", file, v, err)
	}
	return nil
}

// enable switches the probes on or off (off, they cost the kernel nothing).
func (k *kernelTrace) enable(on bool) error {
	v := "0"
	if on {
		v = "1"
	}
	return k.write("events/"+traceGroup+"/enable", v)
}

// clear empties the ring buffer: what it holds after that belongs to the next measurement.
func (k *kernelTrace) clear() error { return k.write("trace", "") }

// stop disables and removes the bench's probes (best effort: also used to clean up after a run
// that died).
func (k *kernelTrace) stop() {
	_ = k.enable(false)
	for _, p := range traceProbes {
		_ = k.write("kprobe_events", fmt.Sprintf("-:%s/%s", traceGroup, p.event))
	}
}

// lastWrite returns the monotonic time of the last of events at or after from and before until,
// and how many such events there were.
func (k *kernelTrace) lastWrite(events map[string]bool, from, until time.Duration) (time.Duration, int, error) {
	f, err := os.Open(filepath.Join(k.dir, "trace"))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	return lastTraceEvent(f, events, from, until)
}

// lastTraceEvent parses tracefs' text output:
//
//	kube-proxy-143  [000] .....  1234.567890: ipvs_genl: (ip_vs_genl_set_cmd+0x0/0x490 [ip_vs])
//
// (the timestamp is seconds on the trace clock), and returns the latest timestamp of events in
// [from, until) and their count. Lines it cannot read are skipped; a buffer that overflowed
// ("LOST n EVENTS") lost only old events, the latest are kept.
func lastTraceEvent(r io.Reader, events map[string]bool, from, until time.Duration) (time.Duration, int, error) {
	var last time.Duration
	n := 0
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		for i := 0; i+1 < len(fields); i++ {
			ts, ok := strings.CutSuffix(fields[i], ":")
			name, ok2 := strings.CutSuffix(fields[i+1], ":")
			if !ok || !ok2 || !events[name] {
				continue
			}
			sec, err := strconv.ParseFloat(ts, 64)
			if err != nil {
				continue
			}
			at := time.Duration(sec * float64(time.Second))
			if at >= from && at < until {
				n++
				last = max(last, at)
			}
			break
		}
	}
	return last, n, sc.Err()
}

// monoNow reads CLOCK_MONOTONIC, the clock of the trace's timestamps.
func monoNow() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err)
	}
	return time.Duration(ts.Nano())
}

// traceFigure turns a read-back's end into the cold start's figure: the last write among events
// before that end, when the trace has one, else the read's end. t0 is the proxier's start on
// the monotonic clock, readEnd the read's end relative to t0. The note says which it was.
func traceFigure(k *kernelTrace, events map[string]bool, t0, readEnd time.Duration) (time.Duration, string) {
	if k == nil {
		return readEnd, "read-back's end (no kernel trace)"
	}
	last, n, err := k.lastWrite(events, t0, t0+readEnd)
	switch {
	case err != nil:
		return readEnd, fmt.Sprintf("read-back's end (reading the kernel trace: %v)", err)
	case n == 0:
		return readEnd, "read-back's end (the kernel trace holds no write)"
	}
	return last - t0, fmt.Sprintf("kernel trace: last of %d writes before the read-back that saw it complete ended at %.2f s", n, readEnd.Seconds())
}
