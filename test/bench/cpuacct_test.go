package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Where a cold start's time goes besides the proxier: the guest has one vCPU, shared with the
// bench's reads of the kernel, the kernel's own work outside the proxier (softirqs, workers)
// and the emulation. The bench samples CPU time while it waits for the cold start and reports
// the split up to the figure.

// cpuSample is the CPU time used up to a moment, in clock ticks (USER_HZ): by the proxier and
// its waited-for children (ipset, iptables-restore), and by the whole guest per /proc/stat kind.
type cpuSample struct {
	at                 time.Time
	proc, children     uint64
	user, system, idle uint64 // user + nice; system; idle + iowait
	irq, softirq       uint64
}

// takeCPUSample reads /proc/PID/stat and /proc/stat; fields it cannot read stay 0.
func takeCPUSample(pid int) cpuSample {
	s := cpuSample{at: time.Now()}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// The command name may hold spaces: fields are counted after its closing parenthesis.
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 {
			f := strings.Fields(string(b[i+1:]))
			if len(f) > 14 { // utime, stime, cutime, cstime are fields 14 to 17 of the line
				s.proc = atou(f[11]) + atou(f[12])
				s.children = atou(f[13]) + atou(f[14])
			}
		}
	}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		if f := strings.Fields(line); len(f) > 7 && f[0] == "cpu" {
			s.user = atou(f[1]) + atou(f[2])
			s.system = atou(f[3])
			s.idle = atou(f[4]) + atou(f[5])
			s.irq, s.softirq = atou(f[6]), atou(f[7])
		}
	}
	return s
}

func atou(s string) uint64 { v, _ := strconv.ParseUint(s, 10, 64); return v }

// clockTick is USER_HZ, the unit of /proc's CPU times (100 on every Linux architecture we run).
const clockTick = 10 * time.Millisecond

// cpuSplit describes the CPU time between the first sample and the last one taken at or before
// until, as a note for the report.
func cpuSplit(samples []cpuSample, until time.Time) string {
	if len(samples) < 2 {
		return "no CPU samples"
	}
	first, last := samples[0], samples[0]
	for _, s := range samples[1:] {
		if s.at.After(until) {
			break
		}
		last = s
	}
	sec := func(a, b uint64) string {
		if b < a {
			return "?"
		}
		return fmt.Sprintf("%.1f s", (time.Duration(b-a) * clockTick).Seconds())
	}
	return fmt.Sprintf("CPU in the first %.1f s of the cold start: the proxier %s (its children %s); the guest user %s, system %s, irq %s, softirq %s, idle %s",
		last.at.Sub(first.at).Seconds(), sec(first.proc, last.proc), sec(first.children, last.children),
		sec(first.user, last.user), sec(first.system, last.system), sec(first.irq, last.irq), sec(first.softirq, last.softirq), sec(first.idle, last.idle))
}
