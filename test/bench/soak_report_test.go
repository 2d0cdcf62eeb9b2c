package bench

// The soak's final-state dump (normalized) and comparison, and its markdown report.

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/framework"
)

// dumpKernelState reads what a proxier programmed in node's namespace, normalized so that two
// namespaces holding the same state print the same lines:
//
//	ipvs        ipvsadm -S -n, sorted (virtual servers with their flags and scheduler, real
//	            servers with forwarding method and weight)
//	kube-ipvs0  its IPv4 addresses, sorted
//	ipset       ipset save, our (KUBE-*) sets only, sorted; the hash size (it grows with the
//	            entries and never shrinks) and the random initval left out
//	iptables-*  iptables-save of nat and filter: our chains, and the rules of any chain that
//	            mention KUBE-; chains sorted by name, each chain's rules in their order
func dumpKernelState(node *framework.Node) (map[string][]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out := map[string][]string{}
	run := func(name string, args ...string) (string, error) { return node.Run(ctx, name, args...) }
	s, err := run("ipvsadm", "-S", "-n")
	if err != nil {
		return nil, err
	}
	out["ipvs"] = normIPVS(s)
	s, err = run("ip", "-4", "-o", "addr", "show", "dev", "kube-ipvs0")
	if err != nil {
		return nil, err
	}
	out["kube-ipvs0"] = normAddrs(s)
	s, err = run("ipset", "save")
	if err != nil {
		return nil, err
	}
	out["ipset"] = normIPSet(s)
	for _, table := range []string{"nat", "filter"} {
		s, err = run("iptables-save", "-t", table)
		if err != nil {
			return nil, err
		}
		out["iptables-"+table] = normIPTables(s)
	}
	return out, nil
}

func normIPVS(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.Join(strings.Fields(l), " "); l != "" {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}

func normAddrs(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		f := strings.Fields(l)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "inet" {
				out = append(out, f[i+1])
			}
		}
	}
	sort.Strings(out)
	return out
}

var ipsetVolatile = regexp.MustCompile(` (hashsize|initval) \S+`)

func normIPSet(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || !strings.HasPrefix(f[1], "KUBE-") {
			continue
		}
		out = append(out, ipsetVolatile.ReplaceAllString(strings.Join(f, " "), ""))
	}
	sort.Strings(out)
	return out
}

func normIPTables(s string) []string {
	var chains []string
	rules := map[string][]string{}
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, ":KUBE-"):
			chains = append(chains, strings.Fields(l[1:])[0])
		case strings.HasPrefix(l, "-A "):
			c := strings.Fields(l)[1]
			if strings.HasPrefix(c, "KUBE-") || strings.Contains(l, "KUBE-") {
				rules[c] = append(rules[c], l)
			}
		}
	}
	sort.Strings(chains)
	var out []string
	for _, c := range chains {
		out = append(out, ":"+c)
	}
	names := make([]string, 0, len(rules))
	for c := range rules {
		names = append(names, c)
	}
	sort.Strings(names)
	for _, c := range names {
		out = append(out, rules[c]...)
	}
	return out
}

// diffKernelStates lists the lines each dump has and the other has not ("-" only in a, "+" only
// in b), per section, counting repeated lines; note says when the sections hold the same lines
// in another order (a chain's rules).
func diffKernelStates(a, b map[string][]string) (diff []string, note string) {
	secs := map[string]bool{}
	for k := range a {
		secs[k] = true
	}
	for k := range b {
		secs[k] = true
	}
	names := make([]string, 0, len(secs))
	for k := range secs {
		names = append(names, k)
	}
	sort.Strings(names)
	var order []string
	for _, sec := range names {
		ca := map[string]int{}
		for _, l := range a[sec] {
			ca[l]++
		}
		for _, l := range b[sec] {
			ca[l]--
		}
		var d []string
		for l, n := range ca {
			for ; n > 0; n-- {
				d = append(d, fmt.Sprintf("- [%s] %s", sec, l))
			}
			for ; n < 0; n++ {
				d = append(d, fmt.Sprintf("+ [%s] %s", sec, l))
			}
		}
		sort.Slice(d, func(i, j int) bool { return d[i][2:] < d[j][2:] || d[i][2:] == d[j][2:] && d[i] < d[j] })
		diff = append(diff, d...)
		if len(d) == 0 && strings.Join(a[sec], "\n") != strings.Join(b[sec], "\n") {
			order = append(order, sec)
		}
	}
	if len(order) > 0 {
		note = "the same lines in another order in: " + strings.Join(order, ", ")
	}
	return diff, note
}

// slopePerHour is the least-squares slope of y over t (seconds), per hour.
func slopePerHour(ts, ys []float64) float64 {
	n := float64(len(ts))
	if n < 2 {
		return math.NaN()
	}
	var st, sy, stt, sty float64
	for i := range ts {
		st += ts[i]
		sy += ys[i]
		stt += ts[i] * ts[i]
		sty += ts[i] * ys[i]
	}
	den := n*stt - st*st
	if den == 0 {
		return math.NaN()
	}
	return (n*sty - st*sy) / den * 3600
}

type soakSeries struct {
	name, unit string
	get        func(SoakSample) float64
	format     string
}

var soakSeriesList = []soakSeries{
	{"RSS (VmRSS)", "MiB", func(s SoakSample) float64 { return float64(s.RSSKB) / 1024 }, "%.1f"},
	{"RSS (process_resident_memory_bytes)", "MiB", func(s SoakSample) float64 { return s.ProcRSS / (1 << 20) }, "%.1f"},
	{"Go heap in use (go_memstats_heap_inuse_bytes)", "MiB", func(s SoakSample) float64 { return s.HeapInuse / (1 << 20) }, "%.1f"},
	{"goroutines (go_goroutines)", "", func(s SoakSample) float64 { return s.Goroutines }, "%.0f"},
	{"open fds (/proc/PID/fd)", "", func(s SoakSample) float64 { return float64(s.FDs) }, "%.0f"},
	{"open fds (process_open_fds)", "", func(s SoakSample) float64 { return s.ProcFDs }, "%.0f"},
}

// syncWindow: syncs between two samples, their mean duration and the bucket bound that every
// one of them stayed under (the histogram's resolution).
func syncWindow(a, b SoakSample) (n, meanMs float64, maxLe string) {
	n = b.Syncs - a.Syncs
	if n <= 0 {
		return 0, 0, "-"
	}
	meanMs = (b.SyncSum - a.SyncSum) / n * 1000
	les := make([]float64, 0, len(b.SyncBuckets))
	byLe := map[float64]string{}
	for k := range b.SyncBuckets {
		v, err := parseLe(k)
		if err == nil {
			les = append(les, v)
			byLe[v] = k
		}
	}
	sort.Float64s(les)
	for _, le := range les {
		k := byLe[le]
		if b.SyncBuckets[k]-a.SyncBuckets[k] >= n {
			if math.IsInf(le, 1) {
				return n, meanMs, "+Inf"
			}
			return n, meanMs, fmt.Sprintf("%g s", le)
		}
	}
	return n, meanMs, "?"
}

func parseLe(s string) (float64, error) {
	if s == "+Inf" {
		return math.Inf(1), nil
	}
	var v float64
	_, err := fmt.Sscan(s, &v)
	return v, err
}

// SoakReport renders the result as markdown.
func SoakReport(r *SoakResult) string {
	var b strings.Builder
	p := func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }
	p("# Soak: our kube-proxy at S=%d, %v of churn\n\n", r.S, r.Duration)
	if r.Note != "" {
		p("%s\n\n", r.Note)
	}
	if r.Failure != "" {
		p("**The run did not finish: %s.** The figures below are what was measured before that.\n\n", r.Failure)
	}
	var churn []SoakSample
	var settle []SoakSample
	for _, s := range r.Samples {
		if s.Phase == "settle" {
			settle = append(settle, s)
		} else {
			churn = append(churn, s)
		}
	}
	all := append(append([]SoakSample{}, churn...), settle...)
	p("## Setup\n\n")
	p("- Our kube-proxy alone (`%s`), `--proxy-mode=ipvs`, the lab's flags (`framework.ProxyArgs`, `--v=2`), in node1 of a\n", r.Binary)
	p("  one-node lab network (`framework.NewNetwork`: a node namespace with a pod bridge, a client namespace\n")
	p("  outside it) in one QEMU guest (kernel %s, TCG, 1 vCPU), against a real kube-apiserver v1.37.2 on\n", r.Kernel)
	p("  the host's loopback.\n")
	p("- Objects: the bench's S=%d Services (`benchctl populate`: ClusterIP, even ones NodePort, an EndpointSlice of\n", r.S)
	p("  10 endpoints on node2 each), and two soak Services (`soak/soak-c` ClusterIP %s:80, `soak/soak-n` NodePort\n", soakClusterIP)
	p("  %d) whose endpoints are two echoserver pods on node1 (10.244.1.10 and .11, port 8080).\n", soakNodePort)
	p("- Cold start: %d virtual servers, %d real servers (weight > 0) in the kernel %.1f s after the start.\n", r.VS, r.RS, r.ColdStartSec)
	p("- Churn: %.1f API changes a second for %v (seed %d), each on a random bench Service: 40%% endpoint churn (a random\n", r.Rate, r.Duration, r.Seed)
	p("  subset of 1..11 endpoints, one in ten with an endpoint not ready), 15%% port 80<->81, 15%% type ClusterIP<->NodePort\n")
	p("  (NodePort allocated by the apiserver), 15%% an externalIP (192.0.2.x) added or removed, 15%% a deletion of the Service and\n")
	p("  its slice (at most 10 deleted at once; each re-created as populate made it %v later); about once a minute the soak\n", soakRecreateAfter)
	p("  Services' endpoints cycle through {pod 1}, {pod 2}, {both} (both pods keep running: no connection should fail).\n")
	p("  At the end everything deleted is re-created and the soak Services get both pods again.\n")
	p("- Client: 5 TCP connections a second, in turn to each target (request, echoserver's answer, close; 3 s timeout):\n")
	for _, tg := range r.Targets {
		p("  - %s\n", tg)
	}
	p("- Samples every %v: `/proc/PID/status` VmRSS, `/proc/PID/fd`, and the proxier's `/metrics`\n", r.SampleEvery)
	p("  (go_memstats_heap_inuse_bytes, go_goroutines, process_resident_memory_bytes, process_open_fds,\n")
	p("  kubeproxy_sync_proxy_rules_duration_seconds). After the churn: %v of settling (still sampled), then the final-state comparison.\n\n", r.Settle)

	p("## Time series\n\n")
	if len(churn) >= 2 {
		ts := make([]float64, len(churn))
		for i, s := range churn {
			ts[i] = s.T
		}
		half := r.Duration.Seconds() / 2
		p("Start is the sample when the churn began (after the cold start), peak the highest sample, end the last\n")
		p("sample after settling; slopes are least-squares fits over the churn's samples, all of them and its second half.\n\n")
		p("| metric | start | peak | end | slope per hour | slope per hour, 2nd half |\n|---|---:|---:|---:|---:|---:|\n")
		for _, se := range soakSeriesList {
			ys := make([]float64, len(churn))
			peak := math.Inf(-1)
			for i, s := range churn {
				ys[i] = se.get(s)
			}
			for _, s := range all {
				peak = math.Max(peak, se.get(s))
			}
			var t2, y2 []float64
			for i := range ts {
				if ts[i] >= half {
					t2, y2 = append(t2, ts[i]), append(y2, ys[i])
				}
			}
			unit := ""
			if se.unit != "" {
				unit = " " + se.unit
			}
			f := se.format
			p("| %s | "+f+"%s | "+f+"%s | "+f+"%s | %+.2f%s | %+.2f%s |\n", se.name, ys[0], unit, peak, unit, se.get(all[len(all)-1]), unit,
				slopePerHour(ts, ys), unit, slopePerHour(t2, y2), unit)
		}
		p("\n")
	}
	if len(all) >= 2 {
		p("Every 5 minutes (syncs and their durations over the 5 minutes before the row; the bucket bound is the\n")
		p("smallest histogram bucket that held every one of them):\n\n")
		p("| t | phase | RSS MiB | heap MiB | goroutines | fds | syncs | mean sync | max sync <= | changes | connections | failed | log errors |\n")
		p("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		prev := all[0]
		row := func(s SoakSample) {
			n, mean, le := syncWindow(prev, s)
			p("| %.0f min | %s | %.1f | %.1f | %.0f | %d | %.0f | %.0f ms | %s | %d | %d | %d | %d |\n", s.T/60, s.Phase, float64(s.RSSKB)/1024, s.HeapInuse/(1<<20),
				s.Goroutines, s.FDs, n, mean, le, s.Changes, s.Conns, s.Fails, s.LogErrors)
			prev = s
		}
		row(all[0])
		next := 300.0
		for i, s := range all[1:] {
			if s.T >= next-1 || (i == len(all)-2 && s.T-prev.T >= 60) {
				row(s)
				for next <= s.T+1 {
					next += 300
				}
			}
		}
		first, last := all[0], all[len(all)-1]
		n, mean, le := syncWindow(first, last)
		p("\nSyncs over the whole run: %.0f, mean %.0f ms, every one under %s.\n", n, mean, le)
		for _, s := range all {
			if s.MetricsErr != "" {
				p("\nA /metrics scrape failed at t=%.0fs: %s\n", s.T, s.MetricsErr)
				break
			}
		}
		p("\n")
	}

	p("## Churn\n\n| change | made | failed |\n|---|---:|---:|\n")
	var ops []string
	for k := range r.ChangesByOp {
		ops = append(ops, k)
	}
	sort.Strings(ops)
	var tot int64
	for _, k := range ops {
		p("| %s | %d | %d |\n", k, r.ChangesByOp[k], r.ChangeErrors[k])
		tot += r.ChangesByOp[k]
	}
	p("| total | %d | |\n\n", tot)
	for _, e := range r.ChangeErrorSamples {
		p("- %s\n", e)
	}
	if len(r.ChangeErrorSamples) > 0 {
		p("\n")
	}

	p("## Connections\n\n| target | connections | failed |\n|---|---:|---:|\n")
	var conns, fails int64
	for _, tg := range r.Targets {
		p("| %s | %d | %d |\n", tg, r.ConnsByTarget[tg], r.FailsByTarget[tg])
		conns += r.ConnsByTarget[tg]
		fails += r.FailsByTarget[tg]
	}
	p("| total | %d | %d |\n\n", conns, fails)
	var pods []string
	for k, v := range r.AnsweredBy {
		pods = append(pods, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(pods)
	p("Answered by: %s.\n\n", strings.Join(pods, ", "))
	if len(r.Failures) > 0 {
		p("Failures (first %d):\n\n", min(len(r.Failures), 30))
		for _, f := range r.Failures[:min(len(r.Failures), 30)] {
			p("- t=%.1fs %s: %s\n", f.T, f.Target, f.Err)
		}
		p("\n")
	}

	p("## The proxier's log\n\n")
	if len(all) > 0 {
		p("%d error lines (klog `E`) by the end of the settling.", all[len(all)-1].LogErrors)
	}
	if len(r.LogErrorLines) > 0 {
		p(" Errors and warnings, most frequent first (digits folded when counting):\n\n```\n")
		for _, l := range r.LogErrorLines {
			p("%s\n", l)
		}
		p("```\n\n")
	} else {
		p(" No error or warning lines.\n\n")
	}

	p("## Final state\n\n")
	if r.FinalA == nil || r.FinalB == nil {
		p("Not compared (the run stopped before).\n")
		return b.String()
	}
	p("After the settling, the kernel state the soaked proxier programmed (A) was dumped; then it was stopped, its network\n")
	p("deleted, and a fresh kube-proxy (the same binary and flags) started in a fresh network (new namespaces: an empty\n")
	p("kernel state) against the same API objects; %.1f s later it had finished a sync, and 45 s after that its state (B)\n", r.FinalFreshSyncSec)
	p("was dumped. Each dump was repeated 20 s later until two in a row were equal (A: %d dumps, B: %d).", r.DumpsA, r.DumpsB)
	p(" Normalized: `ipvsadm -S -n` sorted; kube-ipvs0's addresses; `ipset save` of the KUBE-* sets without\n")
	p("hashsize/initval; `iptables-save` of nat and filter, our chains and every rule mentioning KUBE-, each chain in its order.\n\n")
	p("| section | lines A | lines B |\n|---|---:|---:|\n")
	var secs []string
	for k := range r.FinalA {
		secs = append(secs, k)
	}
	sort.Strings(secs)
	for _, k := range secs {
		p("| %s | %d | %d |\n", k, len(r.FinalA[k]), len(r.FinalB[k]))
	}
	p("\n")
	if len(r.Diff) == 0 && r.DiffNote == "" {
		p("**Equal**: the soaked proxier's kernel state is the one a fresh start programs.\n")
	} else {
		p("**Different** (%d lines; `-` only in the soaked proxier's state, `+` only in the fresh one's)", len(r.Diff))
		if r.DiffNote != "" {
			p("; %s", r.DiffNote)
		}
		p(":\n\n```\n")
		for _, d := range r.Diff[:min(len(r.Diff), 200)] {
			p("%s\n", d)
		}
		if len(r.Diff) > 200 {
			p("... %d more in soak.json\n", len(r.Diff)-200)
		}
		p("```\n")
	}
	return b.String()
}

// The normalization and the diff, on canned tool output (runs in make unit).
func TestSoakNormalizeAndDiff(t *testing.T) {
	a := map[string][]string{
		"ipset": normIPSet("create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x1\n" +
			"add KUBE-CLUSTER-IP 10.96.1.2,tcp:80\nadd KUBE-CLUSTER-IP 10.96.1.1,tcp:80\ncreate OTHER hash:ip\n"),
		"iptables-nat": normIPTables("*nat\n:PREROUTING ACCEPT [3:4]\n:KUBE-SERVICES - [0:0]\n:KUBE-A - [0:0]\n" +
			"-A PREROUTING -j KUBE-SERVICES\n-A PREROUTING -j OTHER\n-A KUBE-SERVICES -j KUBE-A\n-A KUBE-SERVICES -j RETURN\nCOMMIT\n"),
		"kube-ipvs0": normAddrs("5: kube-ipvs0    inet 10.96.1.2/32 scope global kube-ipvs0\\       valid_lft forever\n5: kube-ipvs0    inet 10.96.1.1/32 scope global kube-ipvs0\n"),
	}
	b := map[string][]string{
		"ipset": normIPSet("create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 4096 maxelem 65536 bucketsize 12 initval 0x2\n" +
			"add KUBE-CLUSTER-IP 10.96.1.1,tcp:80\n"),
		"iptables-nat": normIPTables("*nat\n:KUBE-A - [0:0]\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -j RETURN\n-A KUBE-SERVICES -j KUBE-A\n-A PREROUTING -j KUBE-SERVICES\n"),
		"kube-ipvs0":   []string{"10.96.1.1/32", "10.96.1.2/32"},
	}
	if got := strings.Join(a["kube-ipvs0"], ","); got != "10.96.1.1/32,10.96.1.2/32" {
		t.Errorf("addresses: %s", got)
	}
	d, note := diffKernelStates(a, b)
	if len(d) != 1 || d[0] != "- [ipset] add KUBE-CLUSTER-IP 10.96.1.2,tcp:80" {
		t.Errorf("diff: %q", d)
	}
	if note != "the same lines in another order in: iptables-nat" {
		t.Errorf("note: %q", note)
	}
	if s := slopePerHour([]float64{0, 1800, 3600}, []float64{10, 11, 12}); math.Abs(s-2) > 1e-9 {
		t.Errorf("slope %v", s)
	}
}

// TestSoakReportFromJSON renders SOAK_JSON (a soak.json) to SOAK_REPORT_OUT: the report again
// after a change to its layout, without another hour in the guest.
func TestSoakReportFromJSON(t *testing.T) {
	in, out := os.Getenv("SOAK_JSON"), os.Getenv("SOAK_REPORT_OUT")
	if in == "" || out == "" {
		t.Skip("SOAK_JSON and SOAK_REPORT_OUT not set")
	}
	b, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	var r SoakResult
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, []byte(SoakReport(&r)), 0o644); err != nil {
		t.Fatal(err)
	}
}
