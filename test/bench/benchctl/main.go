// Command benchctl is the host side of the IPVS benchmark (hack/bench.sh):
//
//	benchctl populate -kubeconfig F -s N   Services 0..N-1 (+ EndpointSlices) into the apiserver,
//	                                       in parallel; those that exist are left alone
//	benchctl report -in DIR -out FILE      _output/bench-report.md from DIR/bench-*.json; fails
//	                                       when a size or a figure is missing (the harness broke)
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/bench"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/framework"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchctl populate|report [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "populate":
		err = populate(os.Args[2:])
	case "report":
		err = report(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchctl:", err)
		os.Exit(1)
	}
}

func populate(args []string) error {
	fs := flag.NewFlagSet("populate", flag.ExitOnError)
	kc := fs.String("kubeconfig", "", "kubeconfig (host side)")
	s := fs.Int("s", 1000, "Services 0..s-1")
	workers := fs.Int("workers", 48, "parallel requests")
	_ = fs.Parse(args)
	rc, err := clientcmd.BuildConfigFromFlags("", *kc)
	if err != nil {
		return err
	}
	rc.QPS, rc.Burst = 1e6, 1e6 // no client-side throttling: the apiserver is ours alone
	rc.ContentType = "application/vnd.kubernetes.protobuf"
	rc.Timeout = 60 * time.Second
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	ctx := context.Background()
	start := time.Now()
	if err := framework.EnsureNodes(ctx, cs, 2); err != nil {
		return fmt.Errorf("nodes: %w", err)
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: bench.Namespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	created, err := createMissing(ctx, cs, *s, *workers)
	if err != nil {
		return err
	}
	fmt.Printf("benchctl: %d Services with %d endpoints each in the apiserver (%d objects created in %v)\n",
		*s, bench.Endpoints, created, time.Since(start).Round(time.Millisecond))
	return nil
}

// createMissing creates the Services 0..s-1 and their EndpointSlices that the bench namespace
// does not hold yet, so that `make bench` can go from one size to the next against the same
// apiserver. Those that exist are found by a list first: creating a Service again is not
// answered with AlreadyExists but with Invalid, because the apiserver allocates its fixed
// ClusterIP (already taken by the existing one) before it looks at the name.
func createMissing(ctx context.Context, cs kubernetes.Interface, s, workers int) (int64, error) {
	haveSvc, haveSlice := map[string]bool{}, map[string]bool{}
	svcs, err := cs.CoreV1().Services(bench.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, fmt.Errorf("listing Services: %w", err)
	}
	for _, o := range svcs.Items {
		haveSvc[o.Name] = true
	}
	slices, err := cs.DiscoveryV1().EndpointSlices(bench.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, fmt.Errorf("listing EndpointSlices: %w", err)
	}
	for _, o := range slices.Items {
		haveSlice[o.Name] = true
	}
	var next, created atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= s {
					return
				}
				svc, slice := bench.Service(i), bench.Slice(i, bench.Endpoints)
				if err := createOne(ctx, cs, svc, slice, haveSvc[svc.Name], haveSlice[slice.Name], &created); err != nil {
					errc <- fmt.Errorf("service %d: %w", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	return created.Load(), <-errc // the first error, or nil
}

// createOne creates svc and slice unless the apiserver holds them already (have*), counting
// the objects it creates.
func createOne(ctx context.Context, cs kubernetes.Interface, svc *corev1.Service, slice *discoveryv1.EndpointSlice,
	haveSvc, haveSlice bool, created *atomic.Int64) error {
	create := func(have bool, f func() error) error {
		if have {
			return nil
		}
		var err error
		for attempt := 0; attempt < 5; attempt++ {
			if err = f(); err == nil {
				created.Add(1)
				return nil
			}
			if apierrors.IsAlreadyExists(err) {
				return nil
			}
			time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
		}
		return err
	}
	if err := create(haveSvc, func() error {
		_, err := cs.CoreV1().Services(bench.Namespace).Create(ctx, svc, metav1.CreateOptions{})
		return err
	}); err != nil {
		return err
	}
	return create(haveSlice, func() error {
		_, err := cs.DiscoveryV1().EndpointSlices(bench.Namespace).Create(ctx, slice, metav1.CreateOptions{})
		return err
	})
}

func report(args []string) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	in := fs.String("in", "_output/bench", "folder with bench-*.json")
	out := fs.String("out", "_output/bench-report.md", "report")
	sizes := fs.String("sizes", "", "sizes that must be present (space separated)")
	note := fs.String("note", "", "free text under the title")
	_ = fs.Parse(args)
	files, _ := filepath.Glob(filepath.Join(*in, "bench-*.json"))
	var rs []bench.Result
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var r bench.Result
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].S < rs[j].S })
	var problems []string
	have := map[int]bool{}
	for _, r := range rs {
		have[r.S] = true
	}
	for _, s := range strings.Fields(*sizes) {
		var n int
		fmt.Sscan(s, &n)
		if !have[n] {
			problems = append(problems, fmt.Sprintf("S=%d: no result (the guest run failed?)", n))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# IPVS benchmark: upstream kube-proxy v1.37.2 vs ours\n\n")
	fmt.Fprintf(&b, "Generated %s by `make bench` (hack/bench.sh). One QEMU guest (TCG emulation, 1 vCPU: every figure is\n"+
		"several times slower than native) per size; upstream and ours run one after the other in the same guest,\n"+
		"each in a fresh node namespace, against the same apiserver objects. E=%d endpoints per Service; half\n"+
		"the Services have a NodePort (one NodePort address on the node). Cold start and change latency are read\n"+
		"back from the kernel (/proc/PID/net/ip_vs, netlink); a trace of the kernel's own IPVS and address writes\n"+
		"dates the cold start (see the settings line). Ratio = upstream / ours (higher is better for ours).\n"+
		"How it is measured: docs/performance.md.\n\n",
		time.Now().UTC().Format(time.RFC3339), bench.Endpoints)
	if *note != "" {
		fmt.Fprintf(&b, "%s\n\n", *note)
	}
	for _, r := range rs {
		problems = append(problems, writeSize(&b, r)...)
	}
	if len(problems) > 0 {
		fmt.Fprintf(&b, "## Harness problems\n\n")
		for _, p := range problems {
			fmt.Fprintf(&b, "- %s\n", p)
		}
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(*out, []byte(b.String()), 0o644); err != nil {
		return err
	}
	if len(problems) > 0 {
		return fmt.Errorf("%d harness problem(s), see %s:\n  %s", len(problems), *out, strings.Join(problems, "\n  "))
	}
	return nil
}

func writeSize(b *strings.Builder, r bench.Result) (problems []string) {
	var up, ours *bench.ImplResult
	for i := range r.Impls {
		switch r.Impls[i].Name {
		case "upstream":
			up = &r.Impls[i]
		case "ours":
			ours = &r.Impls[i]
		}
	}
	if up == nil || ours == nil {
		problems = append(problems, fmt.Sprintf("S=%d: a proxier's result is missing", r.S))
	}
	// The floor is the fastest load measured: with the kernel trace on (as the proxiers run) or
	// off, whichever was faster (at S=200 the first batch, the traced one, took 2 to 2.7x the
	// second in three runs, although the probes cost nothing measurable over 11,001 writes: most
	// likely the kernel's warm-up).
	floor := math.Min(r.Floor.IpvsadmRestoreSec, r.Floor.NetlinkBatchSec)
	if u := r.Floor.NetlinkBatchUntracedSec; u > 0 {
		floor = math.Min(floor, u)
	}
	if floor <= 0 {
		problems = append(problems, fmt.Sprintf("S=%d: no floor", r.S))
	}
	fmt.Fprintf(b, "## S = %d Services (%d virtual servers, %d real servers)\n\n", r.S, r.VS, r.RS)
	fmt.Fprintf(b, "| metric | upstream | ours | upstream/ours | floor |\n|---|---:|---:|---:|---:|\n")
	// A figure of 0 was not measured (the proxier's measurement stopped before it): n/a.
	measured := func(ok bool, x float64) float64 {
		if !ok {
			return math.NaN()
		}
		return x
	}
	get := func(f func(*bench.ImplResult) float64) (u, o float64) {
		u, o = math.NaN(), math.NaN()
		if up != nil {
			u = f(up)
		}
		if ours != nil {
			o = f(ours)
		}
		return
	}
	// excused says whose figure a failed tool left out (a hung strace): n/a, not a harness problem.
	var excused func(*bench.ImplResult) bool
	row := func(name, unit string, prec int, f func(*bench.ImplResult) float64, fl string) {
		u, o := get(f)
		ratio := "–"
		if o > 0 && u >= 0 {
			ratio = fmt.Sprintf("%.1fx", u/o)
		} else if o == 0 && u > 0 {
			ratio = "∞"
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", name, num(u, unit, prec), num(o, unit, prec), ratio, fl)
		for _, v := range []struct {
			n string
			x float64
			r *bench.ImplResult
		}{{"upstream", u, up}, {"ours", o, ours}} {
			if excused != nil && v.r != nil && excused(v.r) {
				continue
			}
			if math.IsNaN(v.x) || v.x < 0 && !strings.Contains(name, "own counter") {
				problems = append(problems, fmt.Sprintf("S=%d %s: %s missing", r.S, v.n, name))
			}
		}
	}
	floorStr := fmt.Sprintf("%.2f s (ipvsadm --restore %.2f s, netlink batch %.2f s)", floor, r.Floor.IpvsadmRestoreSec, r.Floor.NetlinkBatchSec)
	if u := r.Floor.NetlinkBatchUntracedSec; u > 0 {
		floorStr = fmt.Sprintf("%.2f s (ipvsadm --restore %.2f s, netlink batch %.2f s; with the kernel trace off %.2f s)", floor, r.Floor.IpvsadmRestoreSec, r.Floor.NetlinkBatchSec, u)
	}
	row("cold start (to every VS + RS in the kernel)", "s", 2, func(x *bench.ImplResult) float64 { return measured(x.ColdStartSec > 0, x.ColdStartSec) }, floorStr)
	if ours != nil && floor > 0 && ours.ColdStartSec > 0 {
		fmt.Fprintf(b, "| ours / floor | | %.1fx | | |\n", ours.ColdStartSec/floor)
	}
	row("cold start to every ClusterIP bound as well (Services reachable)", "s", 2, func(x *bench.ImplResult) float64 { return measured(x.ColdBoundSec > 0, x.ColdBoundSec) }, "")
	row("change latency p50", "ms", 0, func(x *bench.ImplResult) float64 { return measured(x.Changes > 0, x.ChangeP50Ms) }, "")
	row("change latency p95", "ms", 0, func(x *bench.ImplResult) float64 { return measured(x.Changes > 0, x.ChangeP95Ms) }, "")
	row("change latency max", "ms", 0, func(x *bench.ImplResult) float64 { return measured(x.Changes > 0, x.ChangeMaxMs) }, "")
	row("EndpointSlice update round trip p50 (included above)", "ms", 0, func(x *bench.ImplResult) float64 { return measured(x.Changes > 0, x.UpdateRTTP50Ms) }, "")
	row("steady CPU per minute (process + children)", "s", 3, func(x *bench.ImplResult) float64 {
		if x.SteadySec <= 0 {
			return math.NaN()
		}
		return x.SteadyCPUSec * 60 / x.SteadySec
	}, "")
	excused = func(x *bench.ImplResult) bool { return x.StraceError != "" }
	row("netlink + exec syscalls per minute (strace)", "", 0, func(x *bench.ImplResult) float64 { return measured(x.StraceSec > 0, x.NetlinkExecPerMin) }, "")
	row("kernel operations per minute (own counter)", "", 1, func(x *bench.ImplResult) float64 { return measured(x.StraceSec > 0, x.OwnOpsPerMin) }, "")
	excused = nil
	row("mean sync duration (kubeproxy_sync_proxy_rules_duration_seconds)", "s", 2, func(x *bench.ImplResult) float64 { return measured(x.Syncs > 0, x.SyncMeanSec) }, "")
	row("kube-proxy diagnose on the node (ours' binary, read-only) CPU", "s", 2, func(x *bench.ImplResult) float64 {
		return measured(x.DiagnoseFindings != nil, x.DiagnoseCPUSec)
	}, "")
	row("peak RSS (VmHWM)", "MiB", 1, func(x *bench.ImplResult) float64 { return measured(x.VmHWMKB > 0, float64(x.VmHWMKB)/1024) }, "")
	row("steady RSS (VmRSS)", "MiB", 1, func(x *bench.ImplResult) float64 { return measured(x.VmRSSKB > 0, float64(x.VmRSSKB)/1024) }, "")
	fmt.Fprintf(b, "\n")
	for _, x := range r.Impls {
		fmt.Fprintf(b, "- %s: %d changes; steady window %.0f s (CPU), strace window %.0f s (%s); kernel held %d VS / %d RS after the cold start (the read-back that saw them all ended at %.2f s and took %.2f s; reads happen when the guest CPU idles, else some reads' time later: %.2f s)",
			x.Name, x.Changes, x.SteadySec, x.StraceSec, fmtCounts(x.Syscalls), x.KernelVS, x.KernelRS, x.ColdReadDoneSec, x.ColdReadSec, x.ColdPollSec)
		if len(x.OwnOps) > 0 {
			fmt.Fprintf(b, "; own counter over the strace window: %s", fmtCounts(x.OwnOps))
		}
		for _, n := range x.Notes {
			fmt.Fprintf(b, "; %s", n)
		}
		if x.Failure != "" {
			fmt.Fprintf(b, "; **measurement stopped early: %s**", x.Failure)
		}
		fmt.Fprintf(b, "\n")
	}
	keys := make([]string, 0, len(r.Settings))
	for k := range r.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var kv []string
	for _, k := range keys {
		kv = append(kv, k+"="+r.Settings[k])
	}
	fmt.Fprintf(b, "- settings: %s\n\n", strings.Join(kv, " "))
	return problems
}

func num(x float64, unit string, prec int) string {
	if math.IsNaN(x) || x < 0 {
		return "n/a"
	}
	s := fmt.Sprintf("%.*f", prec, x)
	if unit != "" {
		s += " " + unit
	}
	return s
}

// fmtCounts is "key value, key value" in key order (values as integers).
func fmtCounts[V int | float64](m map[string]V) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, fmt.Sprintf("%s %.0f", k, float64(m[k])))
	}
	return strings.Join(out, ", ")
}
