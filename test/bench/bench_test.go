package bench

// TestBench is the guest side of the benchmark: run by hack/bench.sh inside ONE lab guest per size
// S, after benchctl populated the apiserver. It fails when the harness breaks (a figure cannot be
// measured), never on timing. Outside the lab (no BENCH_S) it skips.
//
// Per size: the floor (ipvsadm --restore and a moby/ipvs batch into an empty netns), then for each
// kube-proxy (upstream, ours) in a fresh node namespace: cold start, change latency, steady CPU,
// netlink/exec syscall counts (strace), own kernel-operation counter, VmHWM/VmRSS.
//
// Env: BENCH_S, BENCH_KUBECONFIG, BENCH_OUT (results/logs), BENCH_STEADY (CPU window, Go duration or
// seconds; default 300s), BENCH_STRACE (strace window, default 65s), BENCH_CHANGES (default 50),
// BENCH_COLD_TIMEOUT (default 90m; also bounds the wait for the first whole sync),
// BENCH_CHANGE_TIMEOUT (default 5m, at least 3 cold starts), BENCH_CHANGE_BUDGET (the change
// phase's length after 4 changes; default 20m), BENCH_IMPLS (default
// "upstream,ours"), BENCH_PPROF (seconds of CPU profile of ours from its start; 0/unset = none; also
// takes a steady-window CPU profile and a heap profile), KUBE_PROXY_UPSTREAM, KUBE_PROXY_OURS.

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	libipvs "github.com/moby/ipvs"
	"github.com/vishvananda/netlink"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/framework"
)

func envDur(t *testing.T, k string, def time.Duration) time.Duration {
	v := os.Getenv(k)
	if v == "" {
		return def
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		return time.Duration(n * float64(time.Second))
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", k, v, err)
	}
	return d
}

func envInt(t *testing.T, k string, def int) int {
	v := os.Getenv(k)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", k, v, err)
	}
	return n
}

type settings struct {
	s                      int
	kubeconfig, out        string
	steady, strace         time.Duration
	changes                int
	coldTimeout, chTimeout time.Duration
	chBudget               time.Duration // the change phase stops after this, with minChanges done
	pprof                  time.Duration
	diagnose               string       // ours' binary, for `kube-proxy diagnose` on each node
	trace                  *kernelTrace // nil: the cold start's figures are the read-backs' ends
}

func TestBench(t *testing.T) {
	if os.Getenv("BENCH_S") == "" {
		t.Skip("BENCH_S not set: the benchmark runs inside the lab via hack/bench.sh")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	st := settings{
		s: envInt(t, "BENCH_S", 0), kubeconfig: os.Getenv("BENCH_KUBECONFIG"), out: os.Getenv("BENCH_OUT"),
		steady: envDur(t, "BENCH_STEADY", 300*time.Second), strace: envDur(t, "BENCH_STRACE", 65*time.Second),
		changes: envInt(t, "BENCH_CHANGES", 50), coldTimeout: envDur(t, "BENCH_COLD_TIMEOUT", 90*time.Minute),
		chTimeout: envDur(t, "BENCH_CHANGE_TIMEOUT", 5*time.Minute), pprof: envDur(t, "BENCH_PPROF", 0),
		chBudget: envDur(t, "BENCH_CHANGE_BUDGET", 20*time.Minute), diagnose: os.Getenv("KUBE_PROXY_OURS"),
	}
	st.changes += st.changes % 2 // even: the slice ends as it started
	if st.out == "" {
		st.out = t.TempDir()
	}
	if err := os.MkdirAll(st.out, 0o755); err != nil {
		t.Fatal(err)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", st.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	rc.QPS, rc.Burst, rc.Timeout = 1000, 1000, 60*time.Second
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	// The apiserver must hold exactly S bench Services (benchctl populate ran on the host).
	l, err := cs.CoreV1().Services(Namespace).List(context.Background(), metav1.ListOptions{Limit: 1})
	if err != nil {
		t.Fatalf("listing bench Services: %v", err)
	}
	if n := len(l.Items) + int(ptrVal(l.RemainingItemCount)); n != st.s {
		t.Fatalf("the apiserver holds %d bench Services, want BENCH_S=%d (benchctl populate)", n, st.s)
	}

	exp := Expected(st.s)
	res := &Result{S: st.s, Endpoints: Endpoints, VS: len(exp), RS: len(exp) * Endpoints, Settings: map[string]string{
		"BENCH_STEADY": st.steady.String(), "BENCH_STRACE": st.strace.String(), "BENCH_CHANGES": fmt.Sprint(st.changes),
		"kernel": kernelRelease(),
	}}
	save := func() {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(filepath.Join(st.out, fmt.Sprintf("bench-%d.json", st.s)), b, 0o644); err != nil {
			t.Errorf("writing the result: %v", err)
		}
	}
	// The trace is on for the floor too: the probes cost the kernel time on every write, and the
	// floor must pay what the proxiers pay. The floor's netlink batch is also timed without it,
	// which says what the trace costs.
	if kt, err := startKernelTrace(); err != nil {
		res.Settings["cold start timed by"] = fmt.Sprintf("the read-backs' ends (no kernel trace: %v)", err)
	} else {
		st.trace = kt
		defer kt.stop()
		res.Settings["cold start timed by"] = "kernel trace (the last IPVS or address write before the read-back that saw the kernel complete; on for the floor as well)"
	}
	res.Floor = measureFloor(t, exp, st.trace)
	t.Logf("S=%d floor: ipvsadm --restore %.2fs, netlink batch %.2fs (without the kernel trace %.2fs)", st.s, res.Floor.IpvsadmRestoreSec, res.Floor.NetlinkBatchSec, res.Floor.NetlinkBatchUntracedSec)
	save()

	impls := "upstream,ours"
	if v := os.Getenv("BENCH_IMPLS"); v != "" {
		impls = v
	}
	for _, name := range strings.Split(impls, ",") {
		bin := os.Getenv("KUBE_PROXY_" + strings.ToUpper(name))
		if bin == "" {
			t.Errorf("%s: KUBE_PROXY_%s not set", name, strings.ToUpper(name))
			continue
		}
		t.Run(name, func(t *testing.T) {
			// Saved after every phase (and change): a proxier that fails, or a run stopped from
			// outside, still leaves what was measured in the report.
			i := len(res.Impls)
			res.Impls = append(res.Impls, ImplResult{Name: name, Binary: bin})
			measureImpl(t, st, cs, name, bin, exp, func(r ImplResult) { res.Impls[i] = r; save() })
		})
	}
}

func ptrVal(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

func kernelRelease() string {
	var u syscall.Utsname
	if syscall.Uname(&u) != nil {
		return ""
	}
	var b []byte
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}

// --- kernel read-back ---

func vsKey(ip net.IP, port uint16) string {
	return net.JoinHostPort(ip.String(), strconv.Itoa(int(port)))
}

func tcpService(ip net.IP, port uint16) *libipvs.Service {
	return &libipvs.Service{AddressFamily: syscall.AF_INET, Protocol: syscall.IPPROTO_TCP, Address: ip, Port: port,
		SchedName: libipvs.RoundRobin, Netmask: 0xffffffff}
}

func activeDests(ds []*libipvs.Destination) map[string]bool {
	m := map[string]bool{}
	for _, d := range ds {
		if d.Weight > 0 {
			m[d.Address.String()] = true
		}
	}
	return m
}

// idleMeter says whether the guest's CPUs were mostly idle since the last look (/proc/stat).
type idleMeter struct{ idleJ, totalJ uint64 }

func newIdleMeter() *idleMeter { m := &idleMeter{}; m.reset(); return m }

func (m *idleMeter) reset() { m.idleJ, m.totalJ = cpuTimes() }

// idle reports whether at least half the CPU time since the last look was idle, and starts
// the next interval.
func (m *idleMeter) idle() bool {
	idle, total := cpuTimes()
	di, dt := idle-m.idleJ, total-m.totalJ
	m.idleJ, m.totalJ = idle, total
	return dt > 0 && 2*di >= dt
}

// cpuTimes returns the idle (idle + iowait) and total jiffies of the "cpu" line of /proc/stat.
func cpuTimes() (idle, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseUint(f, 10, 64)
		total += v
		if i == 3 || i == 4 {
			idle += v
		}
	}
	return idle, total
}

// readBack runs check, which reads the kernel and counts what is still missing, until nothing
// is; it returns when that read ended, how long it took, and the last fallback interval.
// A read happens when the guest's CPU goes idle (the proxier has stopped working, for now or
// for good; the read takes nothing from it), and otherwise spacing reads' time after the last
// one, so reading takes at most 1/spacing of the CPU the proxier under test needs (1 vCPU). At
// S=10000 a read takes seconds: a fixed interval alone left the cold start ten seconds of
// resolution (the kernel trace, when there is one, times the figure instead: ktrace_test.go).
func (p *proc) readBack(deadline time.Time, spacing int, check func() (missing int, err error)) (done time.Time, read, poll time.Duration, err error) {
	next := time.Now()
	idle := newIdleMeter()
	for {
		if p.exited() {
			return done, read, poll, errors.New("the proxier exited")
		}
		if time.Now().After(deadline) {
			return done, read, poll, errors.New("timed out")
		}
		p.cpu = append(p.cpu, takeCPUSample(p.cmd.Process.Pid))
		if time.Now().Before(next) && !idle.idle() {
			time.Sleep(250 * time.Millisecond)
			continue
		}
		ps := time.Now()
		missing, err := check()
		if err != nil {
			return done, read, poll, fmt.Errorf("reading the kernel: %w", err)
		}
		done = time.Now()
		p.reads = append(p.reads, interval{ps, done})
		read = done.Sub(ps)
		if missing == 0 {
			return done, read, poll, nil
		}
		poll = max(200*time.Millisecond, time.Duration(spacing)*read)
		next = done.Add(poll)
		idle.reset()
	}
}

// minChanges is how many changes a run measures however slow the proxier (an even number:
// the slice ends as it started).
const minChanges = 4

// changeSpacing separates one change's arrival in the kernel from the next change.
const changeSpacing = 1200 * time.Millisecond

// procIPVS reads /proc/PID/net/ip_vs, the IPVS table of the namespace of process pid, and
// returns the number of real servers with a weight above 0 of each IPv4 TCP virtual server,
// keyed as vsKey spells it. The kernel prints addresses and ports in hex:
//
//	TCP  0A600001:0050 rr
//	  -> 0A640000:1F90      Masq    1      0          0
func procIPVS(pid int) (map[string]int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/net/ip_vs", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseIPVSTable(f)
}

func parseIPVSTable(r io.Reader) (map[string]int, error) {
	out := map[string]int{}
	cur := ""
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) >= 2 && fields[0] == "TCP":
			cur = ""
			if k, ok := hexAddrPort(fields[1]); ok {
				cur = k
				out[cur] += 0
			}
		case len(fields) >= 4 && fields[0] == "->" && cur != "":
			if w, err := strconv.Atoi(fields[3]); err == nil && w > 0 {
				out[cur]++
			}
		case len(fields) > 0 && fields[0] != "->":
			cur = ""
		}
	}
	return out, sc.Err()
}

// hexAddrPort turns /proc/net/ip_vs's "0A600001:0050" into "10.96.0.1:80".
func hexAddrPort(s string) (string, bool) {
	a, p, ok := strings.Cut(s, ":")
	if !ok || len(a) != 8 {
		return "", false
	}
	ip, err1 := strconv.ParseUint(a, 16, 32)
	port, err2 := strconv.ParseUint(p, 16, 16)
	if err1 != nil || err2 != nil {
		return "", false
	}
	return vsKey(net.IPv4(byte(ip>>24), byte(ip>>16), byte(ip>>8), byte(ip)).To4(), uint16(port)), true
}

// kernelCounts dumps every virtual server and its real servers.
func kernelCounts(h *libipvs.Handle) (vs, rs int, err error) {
	svcs, err := h.GetServices()
	if err != nil {
		return 0, 0, err
	}
	for _, s := range svcs {
		ds, err := h.GetDestinations(s)
		if err != nil {
			return 0, 0, err
		}
		rs += len(ds)
	}
	return len(svcs), rs, nil
}

// --- the floor ---

// floorAddsPerCall is the proxier's additionsFlushAt (pkg/proxy/ipvs/additions.go).
const floorAddsPerCall = 1024

func measureFloor(t *testing.T, exp []VirtualServer, kt *kernelTrace) Floor {
	var f Floor
	// Each method loads an empty kernel of its own: a flushed namespace is no empty kernel, as
	// IPVS keeps deleted real servers in a trash list that every later add walks (at S=10000,
	// a netlink batch after a flush took 3x as long as into a fresh namespace).
	// The netlink batch goes through the proxier's own IPVS adapter and its fastest writes (the
	// additions of several virtual servers and their real servers in one round trip, 1024 per
	// call of Add, as the proxier sends them), opened inside the namespace; the floor is what
	// loading costs without a proxier around it.
	var adds []kipvs.Addition
	for _, v := range exp {
		a, _ := netip.AddrFromSlice(v.IP.To4())
		k := kipvs.Key{Address: a, Protocol: kipvs.TCP, Port: v.Port}
		adds = append(adds, kipvs.VirtualServerAddition(kipvs.VirtualServer{Key: k, Scheduler: "rr"}))
		for j := 0; j < Endpoints; j++ {
			e, _ := netip.AddrFromSlice(EndpointIP(v.Svc, j))
			adds = append(adds, kipvs.RealServerAddition(k, kipvs.RealServer{Address: e, Port: TargetPort, Weight: 1}))
		}
	}
	netlinkBatch := func(name string, into *float64) {
		floorNS(t, name, exp, func(_ *libipvs.Handle, ns *framework.NS) {
			var w *kipvs.Netlink
			if err := ns.Do(func() (err error) { w, err = kipvs.NewNetlink(); return err }); err != nil {
				t.Fatalf("netlink floor: %v", err)
			}
			defer w.Close()
			start := time.Now()
			for base := 0; base < len(adds); base += floorAddsPerCall {
				var refused error
				err := w.Add(adds[base:min(base+floorAddsPerCall, len(adds))], func(_ int, err error) { refused = err })
				if err = cmp.Or(err, refused); err != nil {
					t.Fatalf("netlink floor: %v", err)
				}
			}
			*into = time.Since(start).Seconds()
		})
	}
	netlinkBatch("bfloor-nl", &f.NetlinkBatchSec)
	if kt != nil {
		if err := kt.enable(false); err != nil {
			t.Fatal(err)
		}
		netlinkBatch("bfloor-nl-untraced", &f.NetlinkBatchUntracedSec)
		if err := kt.enable(true); err != nil {
			t.Fatal(err)
		}
	}

	var b strings.Builder
	for _, v := range exp {
		fmt.Fprintf(&b, "-A -t %s -s rr\n", vsKey(v.IP, v.Port))
		for j := 0; j < Endpoints; j++ {
			fmt.Fprintf(&b, "-a -t %s -r %s -m -w 1\n", vsKey(v.IP, v.Port), vsKey(EndpointIP(v.Svc, j), TargetPort))
		}
	}
	floorNS(t, "bfloor-adm", exp, func(_ *libipvs.Handle, ns *framework.NS) {
		cmd := exec.Command("ipvsadm", "--restore")
		cmd.Stdin = strings.NewReader(b.String())
		var out []byte
		start := time.Now()
		err := ns.Do(func() error { var err error; out, err = cmd.CombinedOutput(); return err })
		f.IpvsadmRestoreSec = time.Since(start).Seconds()
		if err != nil {
			t.Fatalf("ipvsadm --restore: %v: %s", err, out)
		}
	})
	return f
}

// floorNS runs load in a fresh namespace, checks that the kernel then holds every expected
// virtual and real server, and flushes IPVS before the namespace goes (synchronously, so that
// the teardown does not run into the next measurement).
func floorNS(t *testing.T, name string, exp []VirtualServer, load func(*libipvs.Handle, *framework.NS)) {
	ns, err := framework.NewNS(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Delete()
	// Real servers cannot be added in a netns without an IPv4 address: give it the node's.
	d := &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}}
	if err := ns.NL.LinkAdd(d); err != nil {
		t.Fatal(err)
	}
	a, _ := netlink.ParseAddr(NodeIP + "/24")
	if err := ns.NL.AddrAdd(d, a); err != nil {
		t.Fatal(err)
	}
	if err := ns.NL.LinkSetUp(d); err != nil {
		t.Fatal(err)
	}
	h, err := libipvs.New(ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	load(h, ns)
	vs, rs, err := kernelCounts(h)
	if err != nil || vs != len(exp) || rs != len(exp)*Endpoints {
		t.Fatalf("floor %s: kernel holds %d VS / %d RS, want %d / %d (%v)", name, vs, rs, len(exp), len(exp)*Endpoints, err)
	}
	if err := h.Flush(); err != nil {
		t.Fatal(err)
	}
}

// --- one kube-proxy ---

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	// reads are the bench's reads of the kernel during the cold start: they take CPU from the
	// proxier (a read of the IPVS table takes seconds at S=10000), and the report says how much.
	reads []interval
	// cpu samples CPU time while the cold start is read back (cpuacct_test.go).
	cpu []cpuSample
}

// interval is a span of wall-clock time.
type interval struct{ start, end time.Time }

// overlap returns how much of the intervals lies within [from, to).
func overlap(ivs []interval, from, to time.Time) time.Duration {
	var d time.Duration
	for _, iv := range ivs {
		if s, e := maxTime(iv.start, from), minTime(iv.end, to); e.After(s) {
			d += e.Sub(s)
		}
	}
	return d
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) stop() {
	if p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// warmPageCache reads the proxier's binary and runs the tools both proxiers exec, so neither
// proxier's cold start includes reading them from the host: the guest's root is a 9p share, and
// the first exec of an 80 to 114 MB binary through it took 2.4 s of a 7.7 s cold start at S=1000.
// A node that just pulled the image has it in the page cache or on a local disk. Whichever
// proxier ran second used to find the shared tools warm, the first one cold.
func warmPageCache(t *testing.T, bin string) {
	f, err := os.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(io.Discard, f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	// iptables, ip6tables and their -save and -restore are names of one multi-call binary.
	for _, tool := range [][]string{{"ipset", "version"}, {"iptables", "--version"}} {
		if out, err := exec.Command(tool[0], tool[1:]...).CombinedOutput(); err != nil {
			t.Logf("warming the page cache: %s: %v: %s", tool[0], err, out)
		}
	}
}

// measureImpl measures one proxier, handing its result so far to progress after each phase and
// when it returns (also on a failure: t.Fatalf runs the deferred call).
func measureImpl(t *testing.T, st settings, cs kubernetes.Interface, name, bin string, exp []VirtualServer, progress func(ImplResult)) {
	r := ImplResult{Name: name, Binary: bin, OwnOpsPerMin: -1}
	defer func() { progress(r) }()
	node, err := framework.NewBareNode("b" + name[:1] + "node")
	if err != nil {
		t.Fatal(err)
	}
	h, err := libipvs.New(node.Path())
	if err != nil {
		node.Delete()
		t.Fatal(err)
	}
	defer func() {
		_ = h.Flush() // synchronously: the netns' teardown must not run into the next measurement
		h.Close()
		node.Delete()
		time.Sleep(2 * time.Second)
	}()
	logPath := filepath.Join(st.out, fmt.Sprintf("S%d-%s-kube-proxy.log", st.s, name))
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	args := append(framework.ProxyArgs(node, st.kubeconfig), "--profiling=true")
	p := &proc{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	httpc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return node.Dial(network, addr, 10*time.Second)
	}}}
	fail := func(format string, a ...any) {
		t.Helper()
		b, _ := os.ReadFile(logPath)
		if len(b) > 3000 {
			b = b[len(b)-3000:]
		}
		r.Failure = fmt.Sprintf(format, a...)
		t.Fatalf("%s: %s\nlog tail:\n%s", name, r.Failure, b)
	}

	// 1. cold start
	warmPageCache(t, bin)
	if st.trace != nil {
		if err := st.trace.clear(); err != nil {
			t.Fatal(err)
		}
	}
	t0, mono0 := time.Now(), monoNow()
	if err := node.Start(p.cmd); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	defer p.stop()
	pid := p.cmd.Process.Pid
	var profDone chan struct{}
	if st.pprof > 0 && name == "ours" {
		profDone = make(chan struct{})
		go func() {
			defer close(profDone)
			for time.Since(t0) < 30*time.Second {
				if err := fetch(httpc, fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(st.pprof.Seconds())),
					filepath.Join(st.out, fmt.Sprintf("pprof-S%d-%s-cold.pb.gz", st.s, name)), st.pprof+time.Minute); err == nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
	}
	want := map[string]VirtualServer{}
	for _, v := range exp {
		want[vsKey(v.IP, v.Port)] = v
	}
	deadline := t0.Add(st.coldTimeout)
	// With the kernel trace timing the figures, a read only has to find the kernel complete, so
	// reads can be spaced further apart (less CPU taken from the proxier).
	spacing := 10
	if st.trace != nil {
		spacing = 30
	}
	var missing int
	done, read, poll, err := p.readBack(deadline, spacing, func() (int, error) {
		// One read of the kernel's table (/proc/PID/net/ip_vs, the proxier's namespace), not a
		// netlink dump per virtual server: at S=10000 those took longer than the proxier.
		got, err := procIPVS(pid)
		missing = 0
		for k := range want {
			if got[k] < Endpoints {
				missing++
			}
		}
		return missing, err
	})
	if err != nil {
		fail("cold start: %v (%d virtual servers still incomplete)", err, missing)
	}
	r.ColdReadDoneSec, r.ColdReadSec, r.ColdPollSec = done.Sub(t0).Seconds(), read.Seconds(), poll.Seconds()
	cold, how := traceFigure(st.trace, ipvsWriteEvents, mono0, done.Sub(t0))
	r.ColdStartSec = cold.Seconds()
	r.Notes = append(r.Notes, "cold start timed by the "+how)
	// The Services are reachable once their addresses are local too: when that comes after
	// the virtual servers (ours binds an address last), the figure says how much later.
	done, _, _, err = p.readBack(deadline, spacing, func() (int, error) {
		bound, err := node.KubeIPVS0Addrs()
		if errors.Is(err, netlink.ErrDumpInterrupted) {
			// The proxier is still binding (each bind interrupts the dump): not there yet.
			return st.s, nil
		}
		have := make(map[string]bool, len(bound))
		for _, a := range bound {
			have[a] = true
		}
		missing = 0
		for i := range st.s {
			if !have[ClusterIP(i).String()] {
				missing++
			}
		}
		return missing, err
	})
	if err != nil {
		fail("cold start: %v (%d ClusterIPs not bound to kube-ipvs0)", err, missing)
	}
	bound, how := traceFigure(st.trace, addrWriteEvents, mono0, done.Sub(t0))
	r.ColdBoundSec = max(cold, bound).Seconds()
	r.Notes = append(r.Notes, "every ClusterIP bound: timed by the "+how)
	coldEnd, boundEnd := t0.Add(cold), t0.Add(time.Duration(r.ColdBoundSec*float64(time.Second)))
	r.Notes = append(r.Notes, cpuSplit(p.cpu, coldEnd))
	r.Notes = append(r.Notes, fmt.Sprintf("the bench's %d reads of the kernel ran %.2f s within the cold start and %.2f s between it and the last ClusterIP bound (they compete with the proxier for the vCPU)",
		len(p.reads), overlap(p.reads, t0, coldEnd).Seconds(), overlap(p.reads, coldEnd, boundEnd).Seconds()))
	t.Logf("%s S=%d: cold start %.2fs (the read-back saw it complete at %.2fs; every ClusterIP bound at %.2fs)", name, st.s, r.ColdStartSec, r.ColdReadDoneSec, r.ColdBoundSec)
	progress(r)
	if r.KernelVS, r.KernelRS, err = kernelCounts(h); err != nil {
		fail("read-back: %v", err)
	}
	if profDone != nil {
		<-profDone
	}
	if st.diagnose != "" {
		if r.DiagnoseCPUSec, r.DiagnoseFindings, err = runDiagnose(node, st.diagnose, st.kubeconfig); err != nil {
			fail("diagnose: %v", err)
		}
		t.Logf("%s S=%d: kube-proxy diagnose took %.2f s of CPU and found %v", name, st.s, r.DiagnoseCPUSec, r.DiagnoseFindings)
		progress(r)
	}
	time.Sleep(3 * time.Second)

	// The change phase starts once the proxier has finished a whole sync (its sync-duration
	// metric counts one): the cold start above only says that IPVS is complete, and upstream
	// writes its ipsets after IPVS, one `ipset add` process per entry (minutes at S=1000).
	for {
		if n, _ := syncStats(httpc); n >= 1 {
			r.Notes = append(r.Notes, fmt.Sprintf("first sync finished (sync-duration metric) %.1f s after the start", time.Since(t0).Seconds()))
			break
		}
		if p.exited() {
			fail("exited before its first sync finished")
		}
		if time.Since(t0) > st.coldTimeout {
			fail("no sync finished within %v", st.coldTimeout)
		}
		time.Sleep(time.Second)
	}

	// 2. change latency: add / remove one endpoint of ChangeService, poll its virtual server.
	cvs := tcpService(ClusterIP(ChangeService), Port)
	extra := EndpointIP(ChangeService, Endpoints).String()
	slices := cs.DiscoveryV1().EndpointSlices(Namespace)
	ctx := context.Background()
	cur, err := slices.Get(ctx, ServiceName(ChangeService)+"-bench", metav1.GetOptions{})
	if err != nil {
		fail("get slice: %v", err)
	}
	var lats, rtts []float64
	// A proxier that resyncs everything per change takes about a cold start per change (minutes
	// at S=10000): its wait is bounded by the cold start, and the phase by a time budget.
	chTimeout := max(st.chTimeout, 3*time.Duration(r.ColdStartSec*float64(time.Second)))
	phase := time.Now()
	for k := 0; k < st.changes; k++ {
		if k >= minChanges && k%2 == 0 && time.Since(phase) > st.chBudget {
			r.Notes = append(r.Notes, fmt.Sprintf("change budget of %v reached after %d of %d changes", st.chBudget, k, st.changes))
			break
		}
		add := k%2 == 0
		n := Endpoints
		if add {
			n++
		}
		sl := Slice(ChangeService, n)
		sl.ResourceVersion = cur.ResourceVersion
		start := time.Now()
		cur, err = slices.Update(ctx, sl, metav1.UpdateOptions{})
		rtt := time.Since(start)
		if err != nil {
			fail("update slice: %v", err)
		}
		for {
			ds, err := h.GetDestinations(cvs)
			if err == nil && activeDests(ds)[extra] == add {
				break
			}
			if time.Since(start) > chTimeout {
				n, mean := syncStats(httpc)
				fail("change %d (add=%v) not in the kernel after %v (last error %v; %.0f syncs so far, mean %.1fs)", k, add, chTimeout, err, n, mean)
			}
			if p.exited() {
				fail("exited during the change phase")
			}
			// Resolution about 2% of the latency so far: fine for fast proxiers, and polling does not
			// steal the single vCPU from a slow one.
			time.Sleep(min(max(2*time.Millisecond, time.Since(start)/50), 100*time.Millisecond))
		}
		lats = append(lats, float64(time.Since(start).Microseconds())/1000)
		rtts = append(rtts, float64(rtt.Microseconds())/1000)
		r.Changes, r.ChangeMs = len(lats), lats
		r.ChangeP50Ms, r.ChangeP95Ms, r.ChangeMaxMs = pct(lats, 50), pct(lats, 95), pct(lats, 100)
		r.UpdateRTTP50Ms = pct(rtts, 50)
		progress(r)
		// Longer than both proxiers' minimum sync period (1 s by default): with changes closer
		// together, each would wait out the previous sync's rate limit, and the figure would
		// measure that limit rather than the proxier.
		time.Sleep(changeSpacing)
	}
	t.Logf("%s S=%d: change latency p50 %.1fms p95 %.1fms max %.1fms (update RTT p50 %.1fms)", name, st.s, r.ChangeP50Ms, r.ChangeP95Ms, r.ChangeMaxMs, r.UpdateRTTP50Ms)
	time.Sleep(2 * time.Second)

	// 3. steady CPU (no changes)
	if st.pprof > 0 && name == "ours" {
		profDone = make(chan struct{})
		go func() {
			defer close(profDone)
			_ = fetch(httpc, fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(st.steady.Seconds())),
				filepath.Join(st.out, fmt.Sprintf("pprof-S%d-%s-steady.pb.gz", st.s, name)), st.steady+time.Minute)
		}()
	}
	c0, err := cpuSeconds(pid)
	if err != nil {
		fail("cpu: %v", err)
	}
	w0 := time.Now()
	wait(p, st.steady)
	if p.exited() {
		fail("exited during the steady window")
	}
	c1, err := cpuSeconds(pid)
	if err != nil {
		fail("cpu: %v", err)
	}
	r.SteadySec, r.SteadyCPUSec = time.Since(w0).Seconds(), c1-c0
	if profDone != nil {
		<-profDone
		_ = fetch(httpc, "/debug/pprof/heap", filepath.Join(st.out, fmt.Sprintf("pprof-S%d-%s-heap.pb.gz", st.s, name)), time.Minute)
	}
	if r.VmRSSKB, _, err = procStatus(pid); err != nil {
		fail("status: %v", err)
	}
	t.Logf("%s S=%d: steady CPU %.3fs over %.0fs", name, st.s, r.SteadyCPUSec, r.SteadySec)
	progress(r)

	// 4. syscalls (strace) and own counter over a second quiet window
	ops0, ownErr := ownOps(httpc)
	r.Syscalls, r.StraceSec, err = straceWindow(pid, st.strace, filepath.Join(st.out, fmt.Sprintf("S%d-%s-strace.txt", st.s, name)))
	switch {
	case errors.Is(err, errStraceStuck):
		// A tool's failure, not the harness's nor the proxier's: the syscall row says n/a.
		r.StraceError = err.Error()
		r.Notes = append(r.Notes, fmt.Sprintf("system calls not counted: %v", err))
		t.Logf("%s S=%d: %v; the syscall figures are n/a", name, st.s, err)
	case err != nil:
		fail("strace: %v", err)
	}
	if r.StraceSec > 0 {
		r.NetlinkExecPerMin = float64(r.Syscalls["sendmsg"]+r.Syscalls["sendto"]+r.Syscalls["execve"]) * 60 / r.StraceSec
	}
	if ownErr == nil && r.StraceSec > 0 {
		ops1, err := ownOps(httpc)
		if err == nil {
			r.OwnOps = map[string]float64{}
			tot := 0.0
			for k, v := range ops1 {
				r.OwnOps[k] = v - ops0[k]
				tot += v - ops0[k]
			}
			r.OwnOpsPerMin = tot * 60 / r.StraceSec
		}
	} else if name == "ours" {
		t.Errorf("ours: no kubeproxy_ipvs_kernel_operations_total on /metrics: %v", ownErr)
	}
	_, r.VmHWMKB, err = procStatus(pid)
	if err != nil {
		fail("status: %v", err)
	}
	r.Syncs, r.SyncMeanSec = syncStats(httpc)
	t.Logf("%s S=%d: syscalls %v over %.0fs; own ops %v; VmHWM %d kB VmRSS %d kB", name, st.s, r.Syscalls, r.StraceSec, r.OwnOps, r.VmHWMKB, r.VmRSSKB)
}

func wait(p *proc, d time.Duration) {
	select {
	case <-p.done:
	case <-time.After(d):
	}
}

func pct(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return -1
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	i := int(float64(len(s))*q/100+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func fetch(c *http.Client, path, file string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://127.0.0.1:10249"+path, nil)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %s", path, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if file == "" {
		return nil
	}
	return os.WriteFile(file, b, 0o644)
}

var opsRE = regexp.MustCompile(`^kubeproxy_ipvs_kernel_operations_total\{([^}]*)\} ([0-9.e+]+)`)

func ownOps(c *http.Client) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://127.0.0.1:10249/metrics", nil)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := opsRE.FindStringSubmatch(sc.Text()); m != nil {
			v, _ := strconv.ParseFloat(m[2], 64)
			out[m[1]] = v
		}
	}
	if len(out) == 0 {
		return nil, errors.New("metric absent")
	}
	return out, sc.Err()
}

// cpuSeconds: utime+stime of the process and of its waited-for children (ipset, iptables-restore...).
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // f[0] is field 3 (state)
	if len(f) < 15 {
		return 0, fmt.Errorf("short stat %q", s)
	}
	tot := 0.0
	for _, i := range []int{11, 12, 13, 14} { // fields 14-17: utime stime cutime cstime
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return 0, err
		}
		tot += v
	}
	return tot / 100, nil // USER_HZ
}

func procStatus(pid int) (rssKB, hwmKB int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 {
			switch f[0] {
			case "VmRSS:":
				rssKB, _ = strconv.Atoi(f[1])
			case "VmHWM:":
				hwmKB, _ = strconv.Atoi(f[1])
			}
		}
	}
	if rssKB == 0 || hwmKB == 0 {
		return 0, 0, fmt.Errorf("no VmRSS/VmHWM in /proc/%d/status", pid)
	}
	return rssKB, hwmKB, nil
}

// straceKillTimeout bounds strace's exit after SIGKILL (a process in an uninterruptible sleep
// would not die at once).
const straceKillTimeout = time.Minute

var errStraceStuck = errors.New("strace did not exit")

// straceWindow counts sendmsg/sendto/execve of the process and everything it starts for d.
//
// strace writes one line per call and is then killed: with -c, the summary only comes after
// strace has detached from every thread on SIGINT, and that detach sometimes never ended on
// upstream's proxier, which forks and execs all the time (about half the runs in Dec 2026). A
// killed tracer's tracees are detached by the kernel; SIGCONT makes sure none is left stopped.
func straceWindow(pid int, d time.Duration, out string) (map[string]int, float64, error) {
	cmd := exec.Command("strace", "-f", "-qq", "-e", "trace=sendmsg,sendto,execve", "-e", "signal=none", "-o", out, "-p", strconv.Itoa(pid))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, 0, err
	}
	start := time.Now()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		return nil, 0, fmt.Errorf("strace exited early: %v: %s", err, firstLine(stderr.String()))
	case <-time.After(d):
	}
	_ = cmd.Process.Kill()
	secs := time.Since(start).Seconds()
	defer func() { _ = syscall.Kill(pid, syscall.SIGCONT) }()
	select {
	case <-waited:
	case <-time.After(straceKillTimeout):
		return nil, 0, fmt.Errorf("%w %v after SIGKILL", errStraceStuck, straceKillTimeout)
	}
	f, err := os.Open(out)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	counts, err := countStraceCalls(f, "sendmsg", "sendto", "execve")
	return counts, secs, err
}

// countStraceCalls counts the calls of each name in strace's line output (-f -o FILE), where a
// call is one line, or two when another thread's line comes between its start and its end:
//
//	143   sendto(5, [{nlmsg_len=36, ...}], 36, 0, NULL, 0) = 36
//	150   execve("/usr/sbin/ipset", ["ipset", "list"], ...) = 0
//	143   sendmsg(7, {msg_name=...}, 0 <unfinished ...>
//	143   <... sendmsg resumed>) = 52
//
// Only a call's first line counts. A line cut short by the kill is a call all the same.
func countStraceCalls(r io.Reader, names ...string) (map[string]int, error) {
	counts := make(map[string]int, len(names))
	for _, n := range names {
		counts[n] = 0
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimLeft(sc.Text(), "0123456789 ")
		name, _, ok := strings.Cut(line, "(")
		if !ok {
			continue
		}
		if _, want := counts[name]; want {
			counts[name]++
		}
	}
	return counts, sc.Err()
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

// syncStats: how many syncs the proxier ran and their mean duration (upstream's own metric, which
// ours keeps).
func syncStats(c *http.Client) (count, meanSec float64) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://127.0.0.1:10249/metrics", nil)
	resp, err := c.Do(req)
	if err != nil {
		return -1, -1
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch {
		case strings.HasPrefix(f[0], "kubeproxy_sync_proxy_rules_duration_seconds_sum"):
			sum += v
		case strings.HasPrefix(f[0], "kubeproxy_sync_proxy_rules_duration_seconds_count"):
			count += v
		}
	}
	if count == 0 {
		return 0, 0
	}
	return count, sum / count
}

// runDiagnose runs `kube-proxy diagnose -o json` in the node's namespace once and returns its CPU
// time (the process and the children it waited for: iptables-save) and its findings by severity.
// Exit status 2 means "found something", not a failure.
func runDiagnose(node *framework.Node, bin, kubeconfig string) (float64, map[string]int, error) {
	var out, errb bytes.Buffer
	cmd := exec.Command(bin, "diagnose", "-o", "json", "--kubeconfig="+kubeconfig, "--hostname-override="+node.Name)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := node.Start(cmd); err != nil {
		return 0, nil, err
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 2) {
		return 0, nil, fmt.Errorf("%v: %s", err, firstLine(errb.String()))
	}
	var rep struct {
		Findings []struct{ Severity string }
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		return 0, nil, fmt.Errorf("its JSON: %v", err)
	}
	found := map[string]int{}
	for _, f := range rep.Findings {
		found[f.Severity]++
	}
	st := cmd.ProcessState
	return (st.UserTime() + st.SystemTime()).Seconds(), found, nil
}
