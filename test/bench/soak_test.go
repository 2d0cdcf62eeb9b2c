package bench

// TestSoak is the guest side of the soak (hack/soak.sh, make soak; issue 27): OUR kube-proxy
// alone, S bench Services (benchctl populate ran on the host), for SOAK_DURATION under a steady,
// bounded churn of the API objects, while a bounded client opens connections to Services whose
// backends run in the guest (echoserver pods in namespaces) and counts failures. Every
// SOAK_SAMPLE the proxier's RSS, Go heap, goroutines, open fds and sync durations are sampled.
// At the end the churn stops, the state settles, the kernel state the proxier programmed is
// dumped (normalized), and a fresh kube-proxy in a FRESH network (new namespaces, same API
// objects) is dumped the same way: the two must be equal. It writes soak.json and
// soak-report.md to SOAK_OUT. It fails only when the harness breaks (never on a figure); a final
// state that differs is reported, not failed.
//
// Env: SOAK_S, SOAK_KUBECONFIG, SOAK_OUT, SOAK_ECHOSERVER, KUBE_PROXY_OURS, SOAK_DURATION (default
// 60m), SOAK_RATE (API changes per second, default 2), SOAK_SAMPLE (default 30s), SOAK_SETTLE
// (default 180s: IPVS keeps a removed real server with connections in TIME_WAIT as weight 0 for
// up to 2 minutes), SOAK_SEED (default 1), SOAK_NOTE (free text for the report).

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/framework"
)

// The soak's own Services (namespace soakNamespace), whose endpoints are the echoserver pods on
// the node: the client's traffic goes to them. Their addresses and ports are outside what the
// bench objects use (ClusterIPs 10.96.1-41.x, NodePorts 30000-34999) and what the churn
// allocates first (the apiserver allocates a NodePort at random; these exist before it starts).
const (
	soakNamespace   = "soak"
	soakClusterIP   = "10.96.250.1"
	soakNPClusterIP = "10.96.250.2"
	soakNodePort    = 39990
)

// SoakSample is one sample of our kube-proxy (and of the harness's counters at that moment).
type SoakSample struct {
	T            float64 // seconds since the churn started (negative: before it)
	Phase        string  // churn, settle
	RSSKB, HWMKB int     // /proc/PID/status
	FDs          int     // entries of /proc/PID/fd
	HeapInuse    float64 // go_memstats_heap_inuse_bytes
	Goroutines   float64 // go_goroutines
	ProcRSS      float64 // process_resident_memory_bytes
	ProcFDs      float64 // process_open_fds
	Syncs        float64 // kubeproxy_sync_proxy_rules_duration_seconds_count
	SyncSum      float64 // ..._sum
	SyncBuckets  map[string]float64
	Changes      int64 // API changes made so far
	Conns, Fails int64 // client connections so far, failed ones
	LogErrors    int   // klog error lines (E....) in the proxier's log so far
	MetricsErr   string
}

// SoakConnFailure is one failed connection of the client.
type SoakConnFailure struct {
	T      float64
	Target string
	Err    string
}

// SoakResult is what the guest writes to SOAK_OUT/soak.json; the report is made from it.
type SoakResult struct {
	S                   int
	Duration            time.Duration
	Rate                float64
	SampleEvery, Settle time.Duration
	Seed                int64
	Kernel, Binary      string
	Note                string
	Started             time.Time
	ColdStartSec        float64
	VS, RS              int // virtual / real servers after the cold start (weight > 0)
	Samples             []SoakSample
	ChangesByOp         map[string]int64
	ChangeErrors        map[string]int64
	ChangeErrorSamples  []string
	Targets             []string
	ConnsByTarget       map[string]int64
	FailsByTarget       map[string]int64
	Failures            []SoakConnFailure // the first 200
	AnsweredBy          map[string]int64
	LogErrorLines       []string // distinct klog error/warning messages (first 40), with counts
	FinalA, FinalB      map[string][]string
	FinalFreshSyncSec   float64
	DumpsA, DumpsB      int      // dumps taken until two in a row were equal
	Diff                []string // lines only in one dump: "-" the soaked proxier, "+" the fresh one
	DiffNote            string
	Failure             string
}

func TestSoak(t *testing.T) {
	if os.Getenv("SOAK_S") == "" {
		t.Skip("SOAK_S not set: the soak runs inside the lab via hack/soak.sh")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	res := &SoakResult{
		S: envInt(t, "SOAK_S", 0), Duration: envDur(t, "SOAK_DURATION", time.Hour),
		SampleEvery: envDur(t, "SOAK_SAMPLE", 30*time.Second), Settle: envDur(t, "SOAK_SETTLE", 180*time.Second),
		Seed: int64(envInt(t, "SOAK_SEED", 1)), Kernel: kernelRelease(), Binary: os.Getenv("KUBE_PROXY_OURS"),
		Note: os.Getenv("SOAK_NOTE"), ChangesByOp: map[string]int64{}, ChangeErrors: map[string]int64{},
		ConnsByTarget: map[string]int64{}, FailsByTarget: map[string]int64{}, AnsweredBy: map[string]int64{},
	}
	res.Rate = 2
	if v := os.Getenv("SOAK_RATE"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			t.Fatalf("SOAK_RATE=%q", v)
		}
		res.Rate = f
	}
	out, kubeconfig, echo := os.Getenv("SOAK_OUT"), os.Getenv("SOAK_KUBECONFIG"), os.Getenv("SOAK_ECHOSERVER")
	if out == "" {
		out = t.TempDir()
	}
	if res.Binary == "" || echo == "" || kubeconfig == "" {
		t.Fatal("KUBE_PROXY_OURS, SOAK_ECHOSERVER and SOAK_KUBECONFIG must be set")
	}
	var mu sync.Mutex // guards res while the goroutines run
	save := func() {
		mu.Lock()
		b, _ := json.MarshalIndent(res, "", "  ")
		mu.Unlock()
		if err := os.WriteFile(filepath.Join(out, "soak.json"), b, 0o644); err != nil {
			t.Errorf("writing soak.json: %v", err)
		}
	}
	defer func() {
		if r := recover(); r != nil {
			res.Failure = fmt.Sprint(r)
			save()
			panic(r)
		}
		if t.Failed() && res.Failure == "" {
			res.Failure = "the harness failed (see the test output)"
		}
		save()
		if err := os.WriteFile(filepath.Join(out, "soak-report.md"), []byte(SoakReport(res)), 0o644); err != nil {
			t.Errorf("writing the report: %v", err)
		}
	}()

	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	rc.QPS, rc.Burst, rc.Timeout = 100, 100, 30*time.Second
	rc.WarningHandler = rest.NoWarnings{} // "spec.externalIPs is deprecated", on every externalIP change
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	l, err := cs.CoreV1().Services(Namespace).List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		t.Fatalf("listing bench Services: %v", err)
	}
	if n := len(l.Items) + int(ptrVal(l.RemainingItemCount)); n != res.S {
		t.Fatalf("the apiserver holds %d bench Services, want SOAK_S=%d (benchctl populate)", n, res.S)
	}

	// 1. The node (framework.NewNetwork: node1 with a pod network, and a client outside it), two
	// echoserver pods, and the soak's Services pointing at them.
	nw, node, pods := soakNetwork(t, "sa", echo, out)
	closeNet := func() {
		if nw != nil {
			nw.Close() // stops the pods too
			nw = nil
		}
	}
	defer func() { closeNet() }()
	if err := ensureSoakObjects(ctx, cs, pods); err != nil {
		t.Fatal(err)
	}

	// 2. Our kube-proxy, cold start.
	t0 := time.Now()
	px, err := startSoakProxy(node, res.Binary, kubeconfig, filepath.Join(out, "soak-kube-proxy.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer px.stop()
	logPath := px.logPath
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if err := px.waitSynced(wctx, node, t0); err != nil {
		t.Fatalf("first sync: %v", err)
	}
	pid := px.cmd.Process.Pid
	exp := Expected(res.S)
	for {
		got, err := procIPVS(pid)
		if err != nil {
			t.Fatal(err)
		}
		missing := 0
		for _, v := range exp {
			if got[vsKey(v.IP, v.Port)] < Endpoints {
				missing++
			}
		}
		if missing == 0 {
			res.ColdStartSec = time.Since(t0).Seconds()
			res.VS = len(got)
			for _, n := range got {
				res.RS += n
			}
			break
		}
		if wctx.Err() != nil {
			t.Fatalf("cold start: %d virtual servers incomplete after 10 minutes", missing)
		}
		time.Sleep(2 * time.Second)
	}
	t.Logf("soak S=%d: our kube-proxy (pid %d) programmed %d virtual servers, %d real servers in %.1fs", res.S, pid, res.VS, res.RS, res.ColdStartSec)

	// 3. Churn, traffic and samples for the duration, then samples while it settles.
	targets := []soakTarget{
		{name: "node1 -> ClusterIP " + soakClusterIP + ":80", ns: node.NS, addr: soakClusterIP + ":80"},
		{name: fmt.Sprintf("node1 -> NodePort %s:%d", node.IP, soakNodePort), ns: node.NS, addr: fmt.Sprintf("%s:%d", node.IP, soakNodePort)},
		{name: fmt.Sprintf("client -> NodePort %s:%d", node.IP, soakNodePort), ns: nw.Client, addr: fmt.Sprintf("%s:%d", node.IP, soakNodePort)},
	}
	for _, tg := range targets {
		res.Targets = append(res.Targets, tg.name)
	}
	// Every target must answer before the soak starts (the harness works).
	for _, tg := range targets {
		var err error
		for i := 0; i < 30; i++ {
			if _, err = framework.Echo(tg.ns, "tcp", tg.addr, 3*time.Second); err == nil {
				break
			}
			time.Sleep(time.Second)
		}
		if err != nil {
			t.Fatalf("%s does not answer before the soak: %v", tg.name, err)
		}
	}
	start := time.Now()
	res.Started = start
	var changes, conns, fails atomic.Int64
	phase := atomic.Value{}
	phase.Store("churn")
	sample := func() {
		s := SoakSample{T: time.Since(start).Seconds(), Phase: phase.Load().(string), Changes: changes.Load(), Conns: conns.Load(), Fails: fails.Load()}
		s.RSSKB, s.HWMKB, _ = procStatus(pid)
		if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
			s.FDs = len(ents)
		}
		if err := scrapeSoakMetrics(node, &s); err != nil {
			s.MetricsErr = err.Error()
		}
		s.LogErrors = countLogErrors(logPath)
		mu.Lock()
		res.Samples = append(res.Samples, s)
		mu.Unlock()
	}
	sample()
	stopSampler := make(chan struct{})
	samplerDone := make(chan struct{})
	go func() {
		defer close(samplerDone)
		tk := time.NewTicker(res.SampleEvery)
		defer tk.Stop()
		n := 0
		for {
			select {
			case <-stopSampler:
				return
			case <-tk.C:
				sample()
				if n++; n%10 == 0 {
					save()
					last := res.Samples[len(res.Samples)-1]
					t.Logf("soak t=%.0fs: RSS %d KiB, heap %.1f MiB, goroutines %.0f, fds %d, changes %d, connections %d (%d failed)",
						last.T, last.RSSKB, last.HeapInuse/(1<<20), last.Goroutines, last.FDs, last.Changes, last.Conns, last.Fails)
				}
			}
		}
	}()

	churnCtx, stopChurn := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		ch := &churner{cs: cs, s: res.S, rng: rand.New(rand.NewSource(res.Seed)), deleted: map[int]time.Time{}, pods: pods,
			count: func(op string, err error) {
				changes.Add(1)
				mu.Lock()
				defer mu.Unlock()
				res.ChangesByOp[op]++
				if err != nil {
					res.ChangeErrors[op]++
					if len(res.ChangeErrorSamples) < 20 {
						res.ChangeErrorSamples = append(res.ChangeErrorSamples, fmt.Sprintf("t=%.0fs %s: %v", time.Since(start).Seconds(), op, err))
					}
				}
			}}
		ch.run(churnCtx, time.Duration(float64(time.Second)/res.Rate))
	}()
	go func() {
		defer wg.Done()
		tk := time.NewTicker(200 * time.Millisecond) // 5 connections a second, in turn to each target
		defer tk.Stop()
		for i := 0; ; i++ {
			select {
			case <-churnCtx.Done():
				return
			case <-tk.C:
			}
			tg := targets[i%len(targets)]
			r, err := framework.Echo(tg.ns, "tcp", tg.addr, 3*time.Second)
			conns.Add(1)
			mu.Lock()
			res.ConnsByTarget[tg.name]++
			if err != nil {
				fails.Add(1)
				res.FailsByTarget[tg.name]++
				if len(res.Failures) < 200 {
					res.Failures = append(res.Failures, SoakConnFailure{T: time.Since(start).Seconds(), Target: tg.name, Err: err.Error()})
				}
			} else {
				res.AnsweredBy[r.Pod]++
			}
			mu.Unlock()
		}
	}()
	select {
	case <-time.After(res.Duration):
	case <-px.done:
	}
	stopChurn()
	wg.Wait()
	if px.exited() {
		t.Fatalf("our kube-proxy exited during the soak; log tail:\n%s", soakTail(logPath, 40))
	}
	phase.Store("settle")
	t.Logf("soak: churn stopped after %v (%d changes, %d connections, %d failed); settling %v", time.Since(start).Round(time.Second), changes.Load(), conns.Load(), fails.Load(), res.Settle)
	time.Sleep(res.Settle)
	close(stopSampler)
	<-samplerDone
	sample()

	// 4. The final state, then the same API objects from scratch in a fresh network.
	res.FinalA, res.DumpsA, err = stableDump(node)
	if err != nil {
		t.Fatalf("dump: %v", err)
	}
	res.LogErrorLines = distinctLogErrors(logPath, 40)
	px.stop()
	closeNet()
	save()

	nw, node, pods = soakNetwork(t, "sb", echo, filepath.Join(out, "fresh"))
	if err := ensureSoakPods(ctx, cs, pods); err != nil {
		t.Fatal(err)
	}
	t1 := time.Now()
	px2, err := startSoakProxy(node, res.Binary, kubeconfig, filepath.Join(out, "fresh", "soak-kube-proxy.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer px2.stop()
	wctx2, cancel2 := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel2()
	if err := px2.waitSynced(wctx2, node, t1); err != nil {
		t.Fatalf("fresh proxier's first sync: %v", err)
	}
	res.FinalFreshSyncSec = time.Since(t1).Seconds()
	// A whole verification period (30 s) and then some, as the soaked one had.
	time.Sleep(45 * time.Second)
	res.FinalB, res.DumpsB, err = stableDump(node)
	if err != nil {
		t.Fatalf("dump (fresh): %v", err)
	}
	res.Diff, res.DiffNote = diffKernelStates(res.FinalA, res.FinalB)
	t.Logf("soak: final state: %d lines differ between the soaked and the fresh proxier", len(res.Diff))
	for _, d := range res.Diff[:min(len(res.Diff), 50)] {
		t.Log("  " + d)
	}
}

// soakProxy is our kube-proxy in the node's namespace, with the flags every lab proxy gets.
type soakProxy struct {
	cmd     *exec.Cmd
	done    chan struct{}
	logPath string
	logf    *os.File
	once    sync.Once
}

func startSoakProxy(node *framework.Node, bin, kubeconfig, logPath string) (*soakProxy, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	p := &soakProxy{cmd: exec.Command(bin, framework.ProxyArgs(node, kubeconfig)...), done: make(chan struct{}), logPath: logPath, logf: logf}
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := node.Start(p.cmd); err != nil {
		logf.Close()
		return nil, err
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	return p, nil
}

func (p *soakProxy) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop: SIGTERM, SIGKILL after 5 s (once).
func (p *soakProxy) stop() {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		p.logf.Close()
	})
}

// waitSynced waits until the proxier reports a sync (kubeproxy_sync_proxy_rules_last_timestamp_seconds)
// that ended after since.
func (p *soakProxy) waitSynced(ctx context.Context, node *framework.Node, since time.Time) error {
	for {
		if p.exited() {
			return fmt.Errorf("kube-proxy exited (%v); log tail:\n%s", p.cmd.ProcessState, soakTail(p.logPath, 30))
		}
		if code, body, err := node.HTTPGet("http://127.0.0.1:10249/metrics", 5*time.Second); err == nil && code == 200 {
			for _, l := range strings.Split(body, "\n") {
				if !strings.HasPrefix(l, "kubeproxy_sync_proxy_rules_last_timestamp_seconds") {
					continue
				}
				f := strings.Fields(l)
				if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil && v > 0 && time.Unix(0, int64(v*1e9)).After(since) {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no sync after %v; log tail:\n%s", ctx.Err(), soakTail(p.logPath, 30))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// stableDump dumps the kernel state every 20 s until two dumps in a row are equal (at most 6).
func stableDump(node *framework.Node) (map[string][]string, int, error) {
	prev, err := dumpKernelState(node)
	if err != nil {
		return nil, 1, err
	}
	n := 1
	for ; n < 6; n++ {
		time.Sleep(20 * time.Second)
		cur, err := dumpKernelState(node)
		if err != nil {
			return nil, n + 1, err
		}
		same := len(cur) == len(prev)
		if same {
			if d, note := diffKernelStates(prev, cur); len(d) > 0 || note != "" {
				same = false
			}
		}
		prev = cur
		if same {
			return cur, n + 1, nil
		}
	}
	return prev, n, nil
}

type soakTarget struct {
	name, addr string
	ns         *framework.NS
}

// soakNetwork builds one node with two echoserver pods (10.244.1.10 and .11) and the client.
func soakNetwork(t *testing.T, prefix, echo, logDir string) (*framework.Network, *framework.Node, []*framework.Pod) {
	t.Helper()
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	nw, err := framework.NewNetwork(prefix, 1, echo, logDir)
	if err != nil {
		t.Fatalf("network: %v", err)
	}
	node := nw.Nodes[0]
	var pods []*framework.Pod
	for _, name := range []string{"soak-1", "soak-2"} {
		p, err := node.AddPod(name, TargetPort)
		if err != nil {
			nw.Close()
			t.Fatal(err)
		}
		pods = append(pods, p)
	}
	return nw, node, pods
}

// ensureSoakObjects creates the soak namespace, a ClusterIP and a NodePort Service and their
// EndpointSlices (both pods).
func ensureSoakObjects(ctx context.Context, cs kubernetes.Interface, pods []*framework.Pod) error {
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: soakNamespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	for _, svc := range []*corev1.Service{soakService("soak-c", soakClusterIP, 0), soakService("soak-n", soakNPClusterIP, soakNodePort)} {
		if _, err := cs.CoreV1().Services(soakNamespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	return ensureSoakPods(ctx, cs, pods)
}

// ensureSoakPods points both soak Services' EndpointSlices at every pod (ready, on node1).
func ensureSoakPods(ctx context.Context, cs kubernetes.Interface, pods []*framework.Pod) error {
	for _, name := range []string{"soak-c", "soak-n"} {
		sl := soakSlice(name, pods)
		c := cs.DiscoveryV1().EndpointSlices(soakNamespace)
		if _, err := c.Create(ctx, sl, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
			err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
				cur, err := c.Get(ctx, sl.Name, metav1.GetOptions{})
				if err != nil {
					return err
				}
				cur.Endpoints = sl.Endpoints
				_, err = c.Update(ctx, cur, metav1.UpdateOptions{})
				return err
			})
			if err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
	}
	return nil
}

func soakService(name, ip string, nodePort int32) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: soakNamespace},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: ip,
			Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: Port, TargetPort: intstr.FromInt32(TargetPort)}}},
	}
	if nodePort != 0 {
		s.Spec.Type = corev1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = nodePort
	}
	return s
}

func soakSlice(svc string, pods []*framework.Pod) *discoveryv1.EndpointSlice {
	name, proto, port := "http", corev1.ProtocolTCP, int32(TargetPort)
	ready, node := true, "node1"
	sl := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: svc + "-soak", Namespace: soakNamespace, Labels: map[string]string{
			discoveryv1.LabelServiceName: svc, discoveryv1.LabelManagedBy: "soak.kube-proxy-ipvs"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Protocol: &proto, Port: &port}},
	}
	for _, p := range pods {
		sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{Addresses: []string{p.IP.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready}, NodeName: &node})
	}
	return sl
}

// churner changes the bench objects at a steady rate: endpoint churn, port changes, type flips
// ClusterIP<->NodePort, externalIP adds/removes, deletions (re-created 20 s later), and now and
// then the soak Services' endpoints (one pod, the other, both: both pods keep answering, so
// no connection should fail).
type churner struct {
	cs      kubernetes.Interface
	s       int
	rng     *rand.Rand
	deleted map[int]time.Time
	pods    []*framework.Pod
	count   func(op string, err error)
	soakN   int
}

const soakRecreateAfter = 20 * time.Second

func (c *churner) run(ctx context.Context, every time.Duration) {
	tk := time.NewTicker(every)
	defer tk.Stop()
	defer func() {
		// Re-create what is still deleted and give the soak Services both pods: the final state
		// has every Service.
		bg := context.Background()
		for i := range c.deleted {
			c.count("recreate", c.recreate(bg, i))
		}
		c.count("soak-endpoints", c.setSoakEndpoints(bg, c.pods))
	}()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		// Re-creations due first (one per tick).
		due := -1
		for i, at := range c.deleted {
			if time.Since(at) >= soakRecreateAfter {
				due = i
				break
			}
		}
		if due >= 0 {
			err := c.recreate(ctx, due)
			if err == nil || ctx.Err() == nil {
				c.count("recreate", err)
			}
			continue
		}
		if n%120 == 60 { // about once a minute at 2/s
			c.soakN++
			var ps []*framework.Pod
			switch c.soakN % 3 {
			case 0:
				ps = c.pods
			case 1:
				ps = c.pods[:1]
			case 2:
				ps = c.pods[1:]
			}
			c.count("soak-endpoints", c.setSoakEndpoints(ctx, ps))
			continue
		}
		i := c.rng.Intn(c.s)
		if _, gone := c.deleted[i]; gone {
			continue
		}
		var op string
		var err error
		switch x := c.rng.Intn(100); {
		case x < 40:
			op, err = "endpoints", c.endpoints(ctx, i)
		case x < 55:
			op, err = "port", c.updateService(ctx, i, func(s *corev1.Service) {
				if s.Spec.Ports[0].Port == Port {
					s.Spec.Ports[0].Port = Port + 1
				} else {
					s.Spec.Ports[0].Port = Port
				}
			})
		case x < 70:
			op, err = "type", c.updateService(ctx, i, func(s *corev1.Service) {
				if s.Spec.Type == corev1.ServiceTypeNodePort {
					s.Spec.Type = corev1.ServiceTypeClusterIP
					for k := range s.Spec.Ports {
						s.Spec.Ports[k].NodePort = 0
					}
					s.Spec.ExternalTrafficPolicy = ""
				} else {
					s.Spec.Type = corev1.ServiceTypeNodePort
				}
			})
		case x < 85:
			op, err = "externalip", c.updateService(ctx, i, func(s *corev1.Service) {
				if len(s.Spec.ExternalIPs) > 0 {
					s.Spec.ExternalIPs = nil
				} else {
					s.Spec.ExternalIPs = []string{fmt.Sprintf("192.0.2.%d", 1+i%250)}
				}
			})
		default:
			if len(c.deleted) >= 10 {
				continue
			}
			op, err = "delete", c.delete(ctx, i)
			if err == nil {
				c.deleted[i] = time.Now()
			}
		}
		if err == nil || ctx.Err() == nil {
			c.count(op, err)
		}
	}
}

func (c *churner) updateService(ctx context.Context, i int, mutate func(*corev1.Service)) error {
	sc := c.cs.CoreV1().Services(Namespace)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := sc.Get(ctx, ServiceName(i), metav1.GetOptions{})
		if err != nil {
			return err
		}
		mutate(s)
		_, err = sc.Update(ctx, s, metav1.UpdateOptions{})
		return err
	})
}

// endpoints gives Service i a random subset (1..E+1) of its endpoints, now and then one not ready.
func (c *churner) endpoints(ctx context.Context, i int) error {
	n := 1 + c.rng.Intn(Endpoints+1)
	perm := c.rng.Perm(Endpoints + 1)[:n]
	sort.Ints(perm)
	notReady := -1
	if c.rng.Intn(10) == 0 {
		notReady = perm[c.rng.Intn(n)]
	}
	sc := c.cs.DiscoveryV1().EndpointSlices(Namespace)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		sl, err := sc.Get(ctx, ServiceName(i)+"-bench", metav1.GetOptions{})
		if err != nil {
			return err
		}
		node := "node2"
		sl.Endpoints = nil
		for _, j := range perm {
			ready := j != notReady
			sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{Addresses: []string{EndpointIP(i, j).String()},
				Conditions: discoveryv1.EndpointConditions{Ready: &ready}, NodeName: &node})
		}
		_, err = sc.Update(ctx, sl, metav1.UpdateOptions{})
		return err
	})
}

func (c *churner) delete(ctx context.Context, i int) error {
	if err := c.cs.CoreV1().Services(Namespace).Delete(ctx, ServiceName(i), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if err := c.cs.DiscoveryV1().EndpointSlices(Namespace).Delete(ctx, ServiceName(i)+"-bench", metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}

// recreate creates Service i and its slice as populate did. Its NodePort may have been taken by
// a type flip's allocation meanwhile: then the apiserver allocates one.
func (c *churner) recreate(ctx context.Context, i int) error {
	svc := Service(i)
	_, err := c.cs.CoreV1().Services(Namespace).Create(ctx, svc, metav1.CreateOptions{})
	if apierrors.IsInvalid(err) && svc.Spec.Type == corev1.ServiceTypeNodePort {
		svc.Spec.Ports[0].NodePort = 0
		_, err = c.cs.CoreV1().Services(Namespace).Create(ctx, svc, metav1.CreateOptions{})
	}
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	if _, err := c.cs.DiscoveryV1().EndpointSlices(Namespace).Create(ctx, Slice(i, Endpoints), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	delete(c.deleted, i)
	return nil
}

func (c *churner) setSoakEndpoints(ctx context.Context, pods []*framework.Pod) error {
	for _, name := range []string{"soak-c", "soak-n"} {
		want := soakSlice(name, pods)
		sc := c.cs.DiscoveryV1().EndpointSlices(soakNamespace)
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur, err := sc.Get(ctx, want.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			cur.Endpoints = want.Endpoints
			_, err = sc.Update(ctx, cur, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// scrapeSoakMetrics reads the proxier's /metrics (127.0.0.1:10249 in its node).
func scrapeSoakMetrics(node *framework.Node, s *SoakSample) error {
	code, body, err := node.HTTPGet("http://127.0.0.1:10249/metrics", 10*time.Second)
	if err != nil {
		return err
	}
	if code != 200 {
		return fmt.Errorf("metrics: HTTP %d", code)
	}
	s.SyncBuckets = map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "#") {
			continue
		}
		sp := strings.LastIndexByte(l, ' ')
		if sp < 0 {
			continue
		}
		name, v := l[:sp], 0.0
		v, err := strconv.ParseFloat(l[sp+1:], 64)
		if err != nil {
			continue
		}
		switch {
		case name == "go_memstats_heap_inuse_bytes":
			s.HeapInuse = v
		case name == "go_goroutines":
			s.Goroutines = v
		case name == "process_resident_memory_bytes":
			s.ProcRSS = v
		case name == "process_open_fds":
			s.ProcFDs = v
		case strings.HasPrefix(name, "kubeproxy_sync_proxy_rules_duration_seconds_count"):
			s.Syncs += v
		case strings.HasPrefix(name, "kubeproxy_sync_proxy_rules_duration_seconds_sum"):
			s.SyncSum += v
		case strings.HasPrefix(name, "kubeproxy_sync_proxy_rules_duration_seconds_bucket"):
			if m := leRE.FindStringSubmatch(name); m != nil {
				s.SyncBuckets[m[1]] += v
			}
		}
	}
	return sc.Err()
}

var leRE = regexp.MustCompile(`le="([^"]+)"`)

// klog lines: Lmmdd hh:mm:ss.uuuuuu pid file:line] msg
var klogRE = regexp.MustCompile(`^([EW])\d{4} [0-9:.]+\s+\d+ ([^\]]+)\] (.*)$`)

func countLogErrors(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return -1
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	for sc.Scan() {
		if b := sc.Bytes(); len(b) > 1 && b[0] == 'E' && b[1] >= '0' && b[1] <= '9' {
			n++
		}
	}
	return n
}

// distinctLogErrors lists the log's error and warning messages (the source location and the
// message with digits folded), most frequent first, with counts.
func distinctLogErrors(path string, max int) []string {
	f, err := os.Open(path)
	if err != nil {
		return []string{err.Error()}
	}
	defer f.Close()
	counts, first := map[string]int{}, map[string]string{}
	digits := regexp.MustCompile(`[0-9]+`)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	for sc.Scan() {
		m := klogRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		msg := m[3]
		if len(msg) > 300 {
			msg = msg[:300] + "..."
		}
		k := m[1] + " " + m[2] + "] " + digits.ReplaceAllString(msg, "N")
		if len(k) > 160 {
			k = k[:160]
		}
		if counts[k] == 0 {
			first[k] = m[1] + " " + m[2] + "] " + msg
		}
		counts[k]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if counts[keys[i]] != counts[keys[j]] {
			return counts[keys[i]] > counts[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var out []string
	for _, k := range keys[:min(len(keys), max)] {
		out = append(out, fmt.Sprintf("%dx %s", counts[k], first[k]))
	}
	return out
}

func soakTail(path string, n int) string {
	b, _ := os.ReadFile(path)
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(ls[max(0, len(ls)-n):], "\n")
}
