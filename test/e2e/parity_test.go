package e2e

// TestParity: the differential test (docs/parity.md). For each seed, a generated cluster state
// is given to upstream kube-proxy v1.37.2 and to ours, each in its own node namespace with the
// same addresses and the same name (node1), with the same flags, in every configuration variant
// at once; after the initial state and after each change phase, each one must converge, and then
// the normalized dumps of what each programmed must be equal but for parityAllowed. An
// established TCP connection through a Service that never changes must survive every phase on
// both. Replay a seed with PARITY_SEED=N make parity (E2E_PARITY_SEED in the guest).
//
// Environment (hack/parity.sh sets them; the e2e suite's defaults are what make test runs):
//
//	E2E_PARITY_SEED      one seed (replay); else E2E_PARITY_SEEDS seeds from E2E_PARITY_SEED_BASE
//	E2E_PARITY_SEEDS     number of seeds (default parityDefaultSeeds), "0" skips the test
//	E2E_PARITY_SEED_BASE first seed (default 1)
//	E2E_PARITY_VARIANTS  comma-separated variant names, "all", or "rotate" (default and one other
//	                     variant chosen by the seed); default "rotate"
//	E2E_PARITY_PHASES    change phases after the initial state (default 2; the first moves node1's zone)
//	E2E_PARITY_PHASE_TIMEOUT  per-phase convergence budget (default 300s; twice that for phase 0)

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/framework"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// parityVariant is one configuration both implementations get.
type parityVariant struct {
	name  string
	flags []string
}

var parityVariants = []parityVariant{
	{"default", nil},
	{"masqall", []string{"--masquerade-all"}},
	{"nodeportaddrs", []string{"--nodeport-addresses=172.30.0.0/24"}},
	{"sched", []string{"--ipvs-scheduler=lc"}},
	{"strictarp", []string{"--ipvs-strict-arp"}},
	{"timeouts", []string{"--ipvs-tcp-timeout=900s", "--ipvs-tcpfin-timeout=60s", "--ipvs-udp-timeout=120s"}},
}

func parityEnvInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return v
	}
	return def
}

// parityRotate turns "rotate" into "default" plus one other variant chosen by the seed, so that
// a run of N seeds covers every variant at the cost of two per seed.
func parityRotate(spec string, seed uint64) string {
	if spec != "rotate" {
		return spec
	}
	return "default," + parityVariants[1+int(seed%uint64(len(parityVariants)-1))].name
}

func paritySelectVariants(spec string) ([]parityVariant, error) {
	if spec == "" {
		spec = "default,masqall"
	}
	if spec == "all" {
		return parityVariants, nil
	}
	var out []parityVariant
	for _, n := range strings.Split(spec, ",") {
		found := false
		for _, v := range parityVariants {
			if v.name == strings.TrimSpace(n) {
				out, found = append(out, v), true
			}
		}
		if !found {
			return nil, fmt.Errorf("E2E_PARITY_VARIANTS: unknown variant %q", n)
		}
	}
	return out, nil
}

func TestParity(t *testing.T) {
	if skipReason != "" {
		t.Skip(skipReason)
	}
	var seeds []uint64
	if v := os.Getenv("E2E_PARITY_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("E2E_PARITY_SEED=%q: %v", v, err)
		}
		seeds = []uint64{s}
	} else {
		base := uint64(parityEnvInt("E2E_PARITY_SEED_BASE", 1))
		for i := 0; i < parityEnvInt("E2E_PARITY_SEEDS", parityDefaultSeeds); i++ {
			seeds = append(seeds, base+uint64(i))
		}
	}
	if len(seeds) == 0 {
		t.Skip("E2E_PARITY_SEEDS=0 (make parity runs it)")
	}
	spec := os.Getenv("E2E_PARITY_VARIANTS")
	if spec == "" {
		spec = "rotate"
	}
	if _, err := paritySelectVariants(strings.ReplaceAll(spec, "rotate", "default")); err != nil {
		t.Fatal(err)
	}
	up, ours := bothImpls(t)
	// A client of its own that drops the apiserver's warnings (deprecated externalIPs and
	// PreferClose on every write would drown the test's output).
	rc, err := clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	rc.QPS, rc.Burst, rc.WarningHandler = 100, 200, rest.NoWarnings{}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			variants, _ := paritySelectVariants(parityRotate(spec, seed))
			start := time.Now()
			runParitySeed(t, cs, seed, variants, up, ours)
			t.Logf("PARITY_SEED=%d took %v", seed, time.Since(start).Round(time.Second))
		})
	}
}

// paritySide is one implementation in one variant: its node and kube-proxy.
type paritySide struct {
	impl    framework.Impl
	variant parityVariant
	node    *framework.ParityNode
	proxy   *framework.Proxy
	stream  *framework.StreamConn
	dump    []string
	took    time.Duration // convergence time of the last phase
	// lastChange: the quick-read lines of the last change seen in the phase ('-' gone, '+' new),
	// so a late convergence says what moved last.
	lastChange []string
}

func (s *paritySide) label() string { return s.variant.name + "/" + s.impl.Name }

func runParitySeed(t *testing.T, client kubernetes.Interface, seed uint64, variants []parityVariant, up, ours framework.Impl) {
	phases := parityEnvInt("E2E_PARITY_PHASES", 2)
	budget := 300 * time.Second
	if d, err := time.ParseDuration(os.Getenv("E2E_PARITY_PHASE_TIMEOUT")); err == nil {
		budget = d
	}
	names := make([]string, len(variants))
	for i, v := range variants {
		names[i] = v.name
	}
	t.Logf("PARITY_SEED=%d variants=%s phases=%d (replay: PARITY_SEED=%d VARIANTS=%s make parity)",
		seed, strings.Join(names, ","), phases, seed, strings.Join(names, ","))
	logDir := filepath.Join(cfg.Artifacts, "parity", fmt.Sprintf("seed-%d", seed))
	if cfg.Artifacts == "" {
		logDir = t.TempDir()
	}
	_ = os.MkdirAll(logDir, 0o755)
	ns := fmt.Sprintf("parity-%d", seed)
	ctx := context.Background()
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	gen := newParityGen(seed, ns)
	world := gen.Initial()
	gen.addKeep()
	t.Cleanup(func() { parityCleanup(client, ns) })
	t.Cleanup(func() { _ = paritySetZones(ctx, client, nil) })

	// Nodes and echoserver pods first (no proxy yet).
	var sides []*paritySide
	for i, v := range variants {
		for j, im := range []framework.Impl{up, ours} {
			name := fmt.Sprintf("p%c%d", im.Name[0], i)
			pn, err := framework.NewParityNode(name, 2*i+j, cfg.EchoServer, logDir)
			if err != nil {
				t.Fatalf("parity node %s: %v", name, err)
			}
			t.Cleanup(pn.Close)
			if _, err := pn.AddPod("keep", 8080); err != nil {
				t.Fatal(err)
			}
			sides = append(sides, &paritySide{impl: im, variant: v, node: pn})
		}
	}
	// The zones are labelled only once every kube-proxy watches its Node for them, and the
	// Services created after that (below):
	// upstream v1.37.2 can lose the labels a Node has when it starts (docs/parity.md), which
	// would make the comparison fail at random on upstream's side.
	if err := paritySetZones(ctx, client, nil); err != nil {
		t.Fatal(err)
	}
	for _, s := range sides {
		logf := filepath.Join(logDir, s.variant.name+"-"+s.impl.Name)
		_ = os.MkdirAll(logf, 0o755)
		p, err := framework.StartProxy(s.impl, s.node.Node, cfg.Kubeconfig, logf, s.variant.flags...)
		if err != nil {
			t.Fatal(err)
		}
		s.proxy = p
		t.Cleanup(p.Stop)
	}
	for _, s := range sides {
		if err := parityWaitLog(s.proxy.LogPath, parityTopologyWatched, budget); err != nil {
			t.Fatalf("%s %s: %v", s.variant.name, s.impl.Name, err)
		}
	}
	if err := paritySetZones(ctx, client, world.Zones); err != nil {
		t.Fatal(err)
	}
	// The Services come after the zones: a zone that arrived after the real servers would
	// have upstream drain the ones it no longer picks, which takes it minutes.
	applyStart := time.Now()
	want, err := parityApply(ctx, client, world)
	if err != nil {
		t.Fatalf("applying the initial state: %v", err)
	}
	t.Logf("initial state: %d Services applied in %v", len(world.Services), time.Since(applyStart).Round(time.Millisecond))
	applied := time.Now()
	var gone []string
	for phase := 0; phase <= phases; phase++ {
		if phase > 0 {
			changes := gen.Change(phase == 1)
			var sum []string
			for _, c := range changes {
				sum = append(sum, strings.TrimSpace(c.What+" "+c.Service))
			}
			t.Logf("phase %d: %d changes: %s", phase, len(changes), strings.Join(sum, "; "))
			if phase == 1 {
				if err := paritySetZones(ctx, client, world.Zones); err != nil {
					t.Fatal(err)
				}
			}
			prev := want
			if want, err = parityApply(ctx, client, world); err != nil {
				t.Fatalf("phase %d: applying: %v", phase, err)
			}
			applied = time.Now()
			gone = parityMinus(prev, want)
		}
		phaseBudget := budget
		if phase == 0 {
			// Upstream's first sync launches a process per ipset entry of every Service: on a
			// busy host it is the slowest phase by far.
			phaseBudget = 2 * budget
		}
		parityConverge(t, sides, want, gone, applied, phaseBudget, phase)
		if t.Failed() {
			return
		}
		parityCompare(t, seed, phase, sides, logDir, budget)
		for _, s := range sides {
			if phase == 0 {
				keep := world.Services[parityKeepService]
				addr := net.JoinHostPort(keep.Spec.ClusterIP, "80")
				st, err := framework.OpenStream(s.node.NS, addr, 10*time.Second)
				if err != nil {
					t.Errorf("%s: connection through %s (Service %s): %v", s.label(), addr, parityKeepService, err)
					continue
				}
				s.stream = st
				t.Cleanup(func() { st.Close() })
				continue
			}
			if s.stream == nil {
				continue
			}
			if err := s.stream.Ping(fmt.Sprintf("phase-%d", phase)); err != nil {
				t.Errorf("PARITY_SEED=%d phase %d %s: the established connection through Service %s broke: %v", seed, phase, s.label(), parityKeepService, err)
				s.stream = nil
			}
		}
		alive := 0
		for _, s := range sides {
			if s.stream != nil {
				alive++
			}
		}
		t.Logf("phase %d: the connection through Service %s echoes on %d of %d kube-proxies", phase, parityKeepService, alive, len(sides))
	}
}

// parityConverge waits until every side's dump holds the wanted virtual servers, none of the
// gone ones, its kube-proxy completed a sync after the change, and three reads in a row are
// equal; it logs how long each side took (from the end of the API writes to the first read of
// its final state) and upstream/ours per variant.
func parityConverge(t *testing.T, sides []*paritySide, want, gone []string, applied time.Time, budget time.Duration, phase int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(sides))
	for i, s := range sides {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.converge(want, gone, applied, budget)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("phase %d: %s did not converge within %v: %v\nlog tail:\n%s", phase, sides[i].label(), budget, err, parityTail(sides[i].proxy.LogPath))
		}
	}
	var b strings.Builder
	for i := 0; i+1 < len(sides); i += 2 {
		u, o := sides[i], sides[i+1]
		ratio := float64(u.took) / float64(max(o.took, time.Millisecond))
		fmt.Fprintf(&b, " %s: upstream %v, ours %v (upstream/ours %.1fx);", u.variant.name, u.took.Round(10*time.Millisecond), o.took.Round(10*time.Millisecond), ratio)
	}
	t.Logf("phase %d converged:%s", phase, b.String())
	for _, s := range sides {
		if s.took > 10*time.Second && len(s.lastChange) > 0 {
			t.Logf("phase %d: %s's last change, %v after the API writes: %q", phase, s.label(), s.took.Round(10*time.Millisecond), s.lastChange[:min(8, len(s.lastChange))])
		}
	}
}

func parityTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > 20 {
		ls = ls[len(ls)-20:]
	}
	return strings.Join(ls, "\n")
}

func (s *paritySide) converge(want, gone []string, applied time.Time, budget time.Duration) error {
	// Cheap reads (netlink only) every 2 s until the wanted virtual servers are there, a sync has
	// completed since the change and the IPVS table and kube-ipvs0 stopped changing; then full
	// dumps (ipset, iptables-save: processes, which slow a kube-proxy down on one emulated CPU)
	// until two in a row are equal. The time taken is from the end of the API writes to the
	// first cheap read of the final state.
	deadline := applied.Add(budget)
	var prevQ, prevFull []string
	var firstSeen time.Time
	same := 0
	last := errors.New("no read yet")
	for time.Now().Before(deadline) {
		if s.proxy.Exited() {
			return fmt.Errorf("kube-proxy exited")
		}
		q, err := framework.ReadParityQuick(s.node.Node)
		now := time.Now()
		if err != nil {
			last = err
			time.Sleep(2 * time.Second)
			continue
		}
		d := parityDump(q)
		if !slicesEqual(d, prevQ) {
			s.lastChange = nil
			if prevQ != nil {
				s.lastChange, _ = parityDiff(prevQ, d)
			}
			prevQ, firstSeen, same, prevFull = d, now, 0, nil
		} else {
			same++
		}
		missing, stale := parityPresence(d, want, gone)
		synced, serr := s.proxy.LastSync()
		switch {
		case len(missing) > 0:
			last = fmt.Errorf("%d virtual servers missing, e.g. %v", len(missing), missing[:min(5, len(missing))])
		case len(stale) > 0:
			last = fmt.Errorf("%d removed virtual servers still there, e.g. %v", len(stale), stale[:min(5, len(stale))])
		case serr != nil || synced.Before(applied):
			last = fmt.Errorf("no sync completed since the change (%v, %v)", synced, serr)
		case same < 1:
			last = fmt.Errorf("IPVS table still changing")
		default:
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			raw, err := framework.ReadParityRaw(ctx, s.node.Node)
			cancel()
			if err != nil {
				last = err
				break
			}
			full := parityDump(raw)
			if prevFull != nil && slicesEqual(full, prevFull) {
				s.dump, s.took = full, max(firstSeen.Sub(applied), 0)
				return nil
			}
			var changed []string
			if prevFull != nil {
				// '-' the previous read only, '+' this one only: what keeps changing.
				changed, _ = parityDiff(prevFull, full)
			}
			prevFull, last = full, fmt.Errorf("ipsets or chains still changing: %d line(s) between the last two reads, e.g. %q",
				len(changed), changed[:min(8, len(changed))])
		}
		time.Sleep(2 * time.Second)
	}
	return last
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// parityCompare compares each variant's two dumps; on an unexpected difference it reads both
// again (a late sync can still be under way) until budget, then fails with both sides' lines.
func parityCompare(t *testing.T, seed uint64, phase int, sides []*paritySide, logDir string, budget time.Duration) {
	t.Helper()
	for i := 0; i+1 < len(sides); i += 2 {
		u, o := sides[i], sides[i+1]
		deadline := time.Now().Add(budget / 2)
		var unexpected []string
		var allowed map[string][]string
		base := filepath.Join(logDir, fmt.Sprintf("phase%d-%s", phase, u.variant.name))
		for {
			unexpected, allowed = parityDiff(u.dump, o.dump)
			_ = os.WriteFile(base+"-upstream.txt", []byte(strings.Join(u.dump, "\n")+"\n"), 0o644)
			_ = os.WriteFile(base+"-ours.txt", []byte(strings.Join(o.dump, "\n")+"\n"), 0o644)
			if len(unexpected) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(3 * time.Second)
			for _, s := range []*paritySide{u, o} {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				if raw, err := framework.ReadParityRaw(ctx, s.node.Node); err == nil {
					s.dump = parityDump(raw)
				}
				cancel()
			}
		}
		var al []string
		for reason, ls := range allowed {
			al = append(al, fmt.Sprintf("%d line(s): %s", len(ls), reason))
		}
		sort.Strings(al)
		if len(unexpected) > 0 {
			shown := unexpected
			if len(shown) > 150 {
				shown = shown[:150]
			}
			t.Errorf("PARITY_SEED=%d variant %s phase %d: %d unexpected difference(s) ('-' upstream only, '+' ours only; dumps %s-{upstream,ours}.txt):\n%s",
				seed, u.variant.name, phase, len(unexpected), base, strings.Join(shown, "\n"))
			continue
		}
		t.Logf("variant %s phase %d: %d normalized lines each, identical but for allowed differences %v", u.variant.name, phase, len(o.dump), al)
	}
}

func parityMinus(a, b []string) []string {
	in := map[string]bool{}
	for _, x := range b {
		in[x] = true
	}
	var out []string
	for _, x := range a {
		if !in[x] {
			out = append(out, x)
		}
	}
	return out
}

// paritySetZones labels node1..3 with their zones (nil: removes the label).
func paritySetZones(ctx context.Context, cs kubernetes.Interface, zones map[string]string) error {
	for _, n := range []string{"node1", "node2", "node3"} {
		node, err := cs.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if zones == nil {
			delete(node.Labels, parityLabelZone)
		} else {
			node.Labels[parityLabelZone] = zones[n]
		}
		if _, err := cs.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}
	return nil
}

// parityServesFamily reports whether svc has a cluster IP of ip's family.
func parityServesFamily(svc *corev1.Service, ip string) bool {
	v4 := net.ParseIP(ip).To4() != nil
	for _, c := range svc.Spec.ClusterIPs {
		if (net.ParseIP(c).To4() != nil) == v4 {
			return true
		}
	}
	return false
}

// parityApply makes the API match the world: Services created, updated (cluster IP and node
// ports kept by the apiserver) or deleted, their LoadBalancer status written as a cloud
// controller would, EndpointSlices likewise. It returns the virtual servers the world implies
// ("TCP 10.96.3.4:80": cluster IPs, externalIPs, VIP-mode ingress IPs), cluster IPs filled in.
func parityApply(ctx context.Context, cs kubernetes.Interface, w *parityWorld) ([]string, error) {
	svcs := cs.CoreV1().Services(w.NS)
	cur, err := svcs.List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	existing := map[string]*corev1.Service{}
	for i := range cur.Items {
		existing[cur.Items[i].Name] = &cur.Items[i]
	}
	slices := cs.DiscoveryV1().EndpointSlices(w.NS)
	curSl, err := slices.List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	wantSl := map[string]*discoveryv1.EndpointSlice{}
	for _, ss := range w.Slices {
		for _, s := range ss {
			wantSl[s.Name] = s
		}
	}
	// Deletions first (slices, then Services), so that a freed address is free.
	for _, s := range curSl.Items {
		if wantSl[s.Name] == nil {
			if err := slices.Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return nil, err
			}
		}
	}
	for name := range existing {
		if w.Services[name] == nil {
			if err := svcs.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return nil, err
			}
		}
	}
	names := make([]string, 0, len(w.Services))
	for n := range w.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	var want []string
	for _, name := range names {
		d := w.Services[name].DeepCopy()
		var out *corev1.Service
		if e := existing[name]; e == nil {
			if out, err = svcs.Create(ctx, d, metav1.CreateOptions{}); err != nil {
				return nil, fmt.Errorf("service %s: %w", name, err)
			}
		} else {
			d.ResourceVersion = e.ResourceVersion
			d.Spec.ClusterIP, d.Spec.ClusterIPs = e.Spec.ClusterIP, e.Spec.ClusterIPs
			d.Spec.IPFamilies, d.Spec.IPFamilyPolicy = e.Spec.IPFamilies, e.Spec.IPFamilyPolicy
			if d.Spec.Type != corev1.ServiceTypeClusterIP {
				for i := range d.Spec.Ports {
					for _, ep := range e.Spec.Ports {
						if ep.Name == d.Spec.Ports[i].Name && ep.NodePort != 0 {
							d.Spec.Ports[i].NodePort = ep.NodePort
						}
					}
				}
			}
			if d.Spec.Type == corev1.ServiceTypeLoadBalancer && d.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal &&
				e.Spec.Type == corev1.ServiceTypeLoadBalancer && e.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
				d.Spec.HealthCheckNodePort = e.Spec.HealthCheckNodePort
			}
			d.Status = e.Status
			if out, err = svcs.Update(ctx, d, metav1.UpdateOptions{}); err != nil {
				return nil, fmt.Errorf("service %s: %w", name, err)
			}
		}
		// Status as a cloud controller would keep it.
		var ing []corev1.LoadBalancerIngress
		for _, ip := range w.LBIPs[name] {
			m := w.LBModes[name][ip]
			ing = append(ing, corev1.LoadBalancerIngress{IP: ip, IPMode: &m})
		}
		if fmt.Sprint(parityIngressKey(out.Status.LoadBalancer.Ingress)) != fmt.Sprint(parityIngressKey(ing)) {
			out.Status.LoadBalancer.Ingress = ing
			if out, err = svcs.UpdateStatus(ctx, out, metav1.UpdateOptions{}); err != nil {
				return nil, fmt.Errorf("service %s status: %w", name, err)
			}
		}
		w.Services[name].Spec.ClusterIP, w.Services[name].Spec.ClusterIPs = out.Spec.ClusterIP, out.Spec.ClusterIPs
		if out.Spec.Type == corev1.ServiceTypeExternalName || out.Spec.ClusterIP == corev1.ClusterIPNone || out.Spec.ClusterIP == "" {
			continue
		}
		for _, p := range out.Spec.Ports {
			key := func(ip string) string {
				return fmt.Sprintf("%s %s", p.Protocol, net.JoinHostPort(ip, fmt.Sprint(p.Port)))
			}
			for _, ip := range out.Spec.ClusterIPs {
				want = append(want, key(ip))
			}
			// An address of a family the Service has no cluster IP of is served by neither.
			for _, ip := range out.Spec.ExternalIPs {
				if parityServesFamily(out, ip) {
					want = append(want, key(ip))
				}
			}
			for _, ip := range w.LBIPs[name] {
				if w.LBModes[name][ip] == corev1.LoadBalancerIPModeVIP && out.Spec.Type == corev1.ServiceTypeLoadBalancer && parityServesFamily(out, ip) {
					want = append(want, key(ip))
				}
			}
		}
	}
	existingSl := map[string]*discoveryv1.EndpointSlice{}
	for i := range curSl.Items {
		existingSl[curSl.Items[i].Name] = &curSl.Items[i]
	}
	slNames := make([]string, 0, len(wantSl))
	for n := range wantSl {
		slNames = append(slNames, n)
	}
	sort.Strings(slNames)
	for _, n := range slNames {
		d := wantSl[n].DeepCopy()
		if e := existingSl[n]; e != nil {
			d.ResourceVersion = e.ResourceVersion
			_, err = slices.Update(ctx, d, metav1.UpdateOptions{})
		} else {
			_, err = slices.Create(ctx, d, metav1.CreateOptions{})
		}
		if err != nil {
			return nil, fmt.Errorf("endpointslice %s: %w", n, err)
		}
	}
	sort.Strings(want)
	return want, nil
}

func parityIngressKey(in []corev1.LoadBalancerIngress) []string {
	var out []string
	for _, i := range in {
		m := ""
		if i.IPMode != nil {
			m = string(*i.IPMode)
		}
		out = append(out, i.IP+"/"+m)
	}
	return out
}

// parityCleanup deletes the seed's Services and EndpointSlices.
func parityCleanup(cs kubernetes.Interface, ns string) {
	ctx := context.Background()
	_ = cs.DiscoveryV1().EndpointSlices(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
	if l, err := cs.CoreV1().Services(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, s := range l.Items {
			_ = cs.CoreV1().Services(ns).Delete(ctx, s.Name, metav1.DeleteOptions{})
		}
	}
}

// parityDefaultSeeds is how many seeds the e2e suite (make e2e, make test) runs when
// E2E_PARITY_SEEDS is not set: seeds 1-3 with rotated variants cover default, nodeportaddrs,
// sched and strictarp (docs/parity.md).
const parityDefaultSeeds = 3

// parityTopologyWatched is what both kube-proxies log once the Node watch that feeds the
// proxier its topology labels is running: both register the proxier before they start it.
const parityTopologyWatched = `"Caches are synced" controller="node config"`

// parityWaitLog waits until the log at path contains want.
func parityWaitLog(path, want string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		b, err := os.ReadFile(path)
		if err == nil && strings.Contains(string(b), want) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not say %s after %v", path, want, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
