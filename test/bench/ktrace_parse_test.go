package bench

import (
	"strings"
	"testing"
	"time"
)

func TestLastTraceEvent(t *testing.T) {
	const trace = `# tracer: nop
#
# entries-in-buffer/entries-written: 5/5   #P:1
#                                _-----=> irqs-off/BH-disabled
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
#              | |         |   |||||     |         |
CPU:0 [LOST 12 EVENTS]
      kube-proxy-143     [000] .....    10.500000: ipvs_genl: (ip_vs_genl_set_cmd+0x0/0x490 [ip_vs])
      kube-proxy-143     [000] .....    11.250000: addr4_new: (inet_rtm_newaddr+0x0/0x4a0)
      kube-proxy-143     [000] .....    12.000001: ipvs_genl: (ip_vs_genl_set_cmd+0x0/0x490 [ip_vs])
 my proc-7   [000] .....    13.000000: ipvs_sockopt: (do_ip_vs_set_ctl+0x0/0x8e0 [ip_vs])
      kube-proxy-143     [000] .....    14.000000: ipvs_genl: (ip_vs_genl_set_cmd+0x0/0x490 [ip_vs])
      kube-proxy-143     [000] .....    nonsense: ipvs_genl: (garbage)
`
	sec := func(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
	for _, tc := range []struct {
		name        string
		events      map[string]bool
		from, until time.Duration
		last        time.Duration
		n           int
	}{
		{"every IPVS write", ipvsWriteEvents, 0, sec(100), sec(14), 4},
		{"until is exclusive", ipvsWriteEvents, 0, sec(14), sec(13), 3},
		{"from is inclusive", ipvsWriteEvents, sec(12.000001), sec(100), sec(14), 3},
		{"addresses only", addrWriteEvents, 0, sec(100), sec(11.25), 1},
		{"nothing in the window", ipvsWriteEvents, sec(20), sec(30), 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			last, n, err := lastTraceEvent(strings.NewReader(trace), tc.events, tc.from, tc.until)
			if err != nil {
				t.Fatal(err)
			}
			// The timestamps are microseconds: compare at that precision.
			if n != tc.n || last.Round(time.Microsecond) != tc.last.Round(time.Microsecond) {
				t.Errorf("got %v (%d events), want %v (%d)", last, n, tc.last, tc.n)
			}
		})
	}
}
