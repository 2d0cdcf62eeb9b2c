package main

import (
	"strings"
	"testing"

	bench "github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/bench"
)

// full is a proxier's result with every figure measured.
func full(name string) bench.ImplResult {
	return bench.ImplResult{Name: name, ColdStartSec: 5, ColdBoundSec: 5, Changes: 6, ChangeP50Ms: 60,
		ChangeP95Ms: 80, ChangeMaxMs: 90, UpdateRTTP50Ms: 50, SteadySec: 40, SteadyCPUSec: 1, StraceSec: 30,
		NetlinkExecPerMin: 300, OwnOpsPerMin: 100, Syncs: 10, SyncMeanSec: 0.4, VmHWMKB: 70000, VmRSSKB: 70000,
		DiagnoseCPUSec: 0.3, DiagnoseFindings: map[string]int{}}
}

// TestWriteSizeProblems: a missing figure is a harness problem, except the system-call rows of
// a proxier whose strace hung (a tool's failure, said in the report).
func TestWriteSizeProblems(t *testing.T) {
	result := func(up bench.ImplResult) bench.Result {
		return bench.Result{S: 200, VS: 301, RS: 3000, Floor: bench.Floor{IpvsadmRestoreSec: 1.8, NetlinkBatchSec: 0.6},
			Impls: []bench.ImplResult{up, full("ours")}}
	}
	var b strings.Builder
	if p := writeSize(&b, result(full("upstream"))); len(p) != 0 {
		t.Errorf("complete result: problems %v", p)
	}
	noStrace := full("upstream")
	noStrace.StraceSec, noStrace.NetlinkExecPerMin, noStrace.OwnOpsPerMin = 0, 0, 0
	if p := writeSize(&b, result(noStrace)); len(p) != 2 {
		t.Errorf("syscalls missing without a reason: problems %v, want the two strace rows", p)
	}
	noStrace.StraceError = "strace hung: no exit 1m0s after SIGINT"
	if p := writeSize(&b, result(noStrace)); len(p) != 0 {
		t.Errorf("strace hung: problems %v, want none", p)
	}
	noStrace.SteadySec = 0 // still a problem: not a strace row
	if p := writeSize(&b, result(noStrace)); len(p) != 1 || !strings.Contains(p[0], "steady CPU") {
		t.Errorf("steady CPU missing: problems %v", p)
	}
}

// TestWriteSizeFloor: the floor is the fastest load measured, with the kernel trace on or off.
func TestWriteSizeFloor(t *testing.T) {
	for _, tc := range []struct {
		name  string
		floor bench.Floor
		want  string
	}{
		{"no untraced batch", bench.Floor{IpvsadmRestoreSec: 1.8, NetlinkBatchSec: 0.5}, "| ours / floor | | 10.0x |"},
		{"the untraced batch is faster", bench.Floor{IpvsadmRestoreSec: 1.8, NetlinkBatchSec: 0.5, NetlinkBatchUntracedSec: 0.25}, "| ours / floor | | 20.0x |"},
		{"the traced batch is faster", bench.Floor{IpvsadmRestoreSec: 1.8, NetlinkBatchSec: 0.5, NetlinkBatchUntracedSec: 1}, "| ours / floor | | 10.0x |"},
	} {
		var b strings.Builder
		r := bench.Result{S: 200, VS: 301, RS: 3000, Floor: tc.floor, Impls: []bench.ImplResult{full("upstream"), full("ours")}}
		if p := writeSize(&b, r); len(p) != 0 {
			t.Fatalf("%s: problems %v", tc.name, p)
		}
		if !strings.Contains(b.String(), tc.want) {
			t.Errorf("%s: no %q in\n%s", tc.name, tc.want, b.String())
		}
	}
}
