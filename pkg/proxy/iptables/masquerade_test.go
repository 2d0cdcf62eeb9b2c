package iptables

import (
	"bytes"
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/events"
	sysctltest "k8s.io/component-helpers/node/util/sysctl/testing"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	upstreamiptables "k8s.io/kubernetes/pkg/proxy/iptables"
	proxyutil "k8s.io/kubernetes/pkg/proxy/util"
	utiliptables "k8s.io/kubernetes/pkg/util/iptables"
	iptablestest "k8s.io/kubernetes/pkg/util/iptables/testing"
	"k8s.io/utils/ptr"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/forkconfig"
)

// The KUBE-POSTROUTING rules upstream's iptables proxier writes (pkg/proxy/iptables/proxier.go
// and the expected dumps of its proxier_test.go, masquerade bit 14).
const (
	upReturn = "-A KUBE-POSTROUTING -m mark ! --mark 0x00004000/0x00004000 -j RETURN"
	upClear  = "-A KUBE-POSTROUTING -j MARK --xor-mark 0x00004000"
	upRandom = `-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully`
	upPlain  = `-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE`
	vx4789   = `-A KUBE-POSTROUTING -p udp -m udp --dport 4789 -m comment --comment "kube-proxy-ipvs VXLAN traffic requiring SNAT without random-fully" -j MASQUERADE`
	vx8472   = `-A KUBE-POSTROUTING -p udp -m udp --dport 8472 -m comment --comment "kube-proxy-ipvs VXLAN traffic requiring SNAT without random-fully" -j MASQUERADE`
)

// upstreamInput is the shape of upstream's restore input: filter first, then nat with its
// chain declarations, KUBE-POSTROUTING first among the rules.
const upstreamInput = `*filter
:KUBE-NODEPORTS - [0:0]
:KUBE-SERVICES - [0:0]
-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 has no endpoints" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j REJECT
COMMIT
*nat
:KUBE-SERVICES - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-MARK-MASQ - [0:0]
` + upReturn + "\n" + upClear + "\n" + upRandom + `
-A KUBE-MARK-MASQ -j MARK --or-mark 0x00004000
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
COMMIT
`

func replaceLine(text, old string, with ...string) string {
	return strings.Replace(text, old+"\n", strings.Join(with, "\n")+"\n", 1)
}

func TestRewrite(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    string
		table string
		mode  forkconfig.RandomFully
		ports []uint16
		want  string
	}{
		{"always", upstreamInput, "", forkconfig.RandomFullyAlways, []uint16{8472}, upstreamInput},
		{"never", upstreamInput, "", forkconfig.RandomFullyNever, nil, replaceLine(upstreamInput, upRandom, upPlain)},
		{"never ignores VXLAN", upstreamInput, "", forkconfig.RandomFullyNever, []uint16{8472}, replaceLine(upstreamInput, upRandom, upPlain)},
		{"auto without VXLAN", upstreamInput, "", forkconfig.RandomFullyAuto, nil, upstreamInput},
		{"auto", upstreamInput, "", forkconfig.RandomFullyAuto, []uint16{8472}, replaceLine(upstreamInput, upRandom, vx8472, upRandom)},
		{"auto sorted unique", upstreamInput, "", forkconfig.RandomFullyAuto, []uint16{8472, 4789, 0, 8472}, replaceLine(upstreamInput, upRandom, vx4789, vx8472, upRandom)},
		// Restore of the nat table alone: the input may or may not name the table.
		{"nat without header", upReturn + "\n" + upRandom + "\nCOMMIT\n", "nat", forkconfig.RandomFullyAuto, []uint16{8472},
			upReturn + "\n" + vx8472 + "\n" + upRandom + "\nCOMMIT\n"},
		{"filter table untouched", "*filter\n" + upRandom + "\nCOMMIT\n", "", forkconfig.RandomFullyNever, nil, "*filter\n" + upRandom + "\nCOMMIT\n"},
		{"other chain untouched", "*nat\n-A POSTROUTING -j MASQUERADE --random-fully\nCOMMIT\n", "", forkconfig.RandomFullyNever, nil,
			"*nat\n-A POSTROUTING -j MASQUERADE --random-fully\nCOMMIT\n"},
		// A partial restore that leaves KUBE-POSTROUTING alone passes as it is.
		{"partial", "*nat\n:KUBE-SVC-X - [0:0]\n-A KUBE-SVC-X -j KUBE-SEP-Y\nCOMMIT\n", "", forkconfig.RandomFullyAuto, []uint16{8472},
			"*nat\n:KUBE-SVC-X - [0:0]\n-A KUBE-SVC-X -j KUBE-SEP-Y\nCOMMIT\n"},
		{"never, flag not last", "*nat\n-A KUBE-POSTROUTING -m comment --comment \"a  b\" -j MASQUERADE --random-fully --to-ports 1024-65535\nCOMMIT\n", "", forkconfig.RandomFullyNever, nil,
			"*nat\n-A KUBE-POSTROUTING -m comment --comment \"a  b\" -j MASQUERADE --to-ports 1024-65535\nCOMMIT\n"},
		{"not a MASQUERADE", "*nat\n-A KUBE-POSTROUTING -j SNAT --to-source 192.0.2.1 --random-fully\nCOMMIT\n", "", forkconfig.RandomFullyAuto, []uint16{8472},
			"*nat\n-A KUBE-POSTROUTING -j SNAT --to-source 192.0.2.1 --random-fully\nCOMMIT\n"},
		{"no trailing newline", "*nat\n" + upRandom, "", forkconfig.RandomFullyNever, nil, "*nat\n" + upPlain},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(Rewrite([]byte(tc.in), tc.table, tc.mode, tc.ports)); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// recorder is an iptables fake that keeps every restore input and can fail one.
type recorder struct {
	*iptablestest.FakeIPTables
	mu       sync.Mutex
	restores []string
	fail     error
}

func (r *recorder) record(data []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.restores = append(r.restores, string(data))
	err := r.fail
	r.fail = nil
	return err
}

func (r *recorder) RestoreAll(data []byte, flush utiliptables.FlushFlag, counters utiliptables.RestoreCountersFlag) error {
	if err := r.record(data); err != nil {
		return err
	}
	return r.FakeIPTables.RestoreAll(data, flush, counters)
}

func (r *recorder) Restore(table utiliptables.Table, data []byte, flush utiliptables.FlushFlag, counters utiliptables.RestoreCountersFlag) error {
	if err := r.record(data); err != nil {
		return err
	}
	return r.FakeIPTables.Restore(table, data, flush, counters)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.restores)
}

// postrouting is KUBE-POSTROUTING as the fake kernel holds it.
func postrouting(t *testing.T, ipt utiliptables.Interface) []string {
	t.Helper()
	var b bytes.Buffer
	if err := ipt.SaveInto(utiliptables.TableNAT, &b); err != nil {
		t.Fatalf("save: %v", err)
	}
	var out []string
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(l, "-A KUBE-POSTROUTING ") {
			out = append(out, l)
		}
	}
	return out
}

func wantRules(t *testing.T, ipt utiliptables.Interface, want ...string) {
	t.Helper()
	if got := postrouting(t, ipt); !slices.Equal(got, want) {
		t.Errorf("KUBE-POSTROUTING:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// node is the VXLAN links of a fake node.
type node struct {
	mu    sync.Mutex
	ports []uint16
	err   error
	reads int
}

func (n *node) read() ([]uint16, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.reads++
	return slices.Clone(n.ports), n.err
}

func (n *node) set(ports ...uint16) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ports = ports
}

// newUpstreamProxier builds upstream's own iptables proxier over ipt.
func newUpstreamProxier(t *testing.T, ipt utiliptables.Interface) *upstreamiptables.Proxier {
	t.Helper()
	cfg := &kubeproxyconfig.KubeProxyConfiguration{
		SyncPeriod: metav1.Duration{Duration: 30 * time.Second},
		IPTables: kubeproxyconfig.KubeProxyIPTablesConfiguration{
			MasqueradeBit:      ptr.To[int32](14),
			LocalhostNodePorts: ptr.To(false),
		},
	}
	p, err := upstreamiptables.NewProxier(context.Background(), cfg, v1.IPv4Protocol, ipt, sysctltest.NewFake(),
		proxyutil.NewDetectLocalByCIDR("10.244.0.0/16"), "node-a", net.ParseIP("192.168.0.10"),
		events.NewFakeRecorder(100), nil, false)
	if err != nil {
		t.Fatalf("upstream NewProxier: %v", err)
	}
	return p
}

// start gives upstream's proxier a service whose endpoint is on another node and runs its
// first (full) sync.
func start(p *upstreamiptables.Proxier) {
	svc := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"},
		Spec: v1.ServiceSpec{
			Type: v1.ServiceTypeClusterIP, ClusterIP: "10.96.0.10", ClusterIPs: []string{"10.96.0.10"},
			IPFamilies: []v1.IPFamily{v1.IPv4Protocol},
			Ports:      []v1.ServicePort{{Name: "p", Port: 80, Protocol: v1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	sl := &discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-1", Namespace: "ns", Labels: map[string]string{discovery.LabelServiceName: "web"}},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: ptr.To("p"), Port: ptr.To[int32](8080), Protocol: ptr.To(v1.ProtocolTCP)}},
		Endpoints: []discovery.Endpoint{{Addresses: []string{"10.244.1.5"}, NodeName: ptr.To("node-b"),
			Conditions: discovery.EndpointConditions{Ready: ptr.To(true)}}},
	}
	p.OnServiceAdd(svc)
	p.OnEndpointSliceAdd(sl)
	p.OnServiceSynced()
	p.OnEndpointSlicesSynced()
}

// withoutPostrouting is a nat dump without KUBE-POSTROUTING's rules.
func withoutPostrouting(t *testing.T, ipt utiliptables.Interface) string {
	t.Helper()
	var b bytes.Buffer
	_ = ipt.SaveInto(utiliptables.TableNAT, &b)
	var out []string
	for _, l := range strings.Split(b.String(), "\n") {
		if !strings.HasPrefix(l, "-A KUBE-POSTROUTING ") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestUpstreamProxier runs upstream's iptables proxier over the decorator in each mode: its
// KUBE-POSTROUTING follows the mode, the rest of its rules are what it writes undecorated.
func TestUpstreamProxier(t *testing.T) {
	plain := iptablestest.NewFake()
	start(newUpstreamProxier(t, plain))
	wantRules(t, plain, upReturn, upClear, upRandom)

	for _, tc := range []struct {
		mode  forkconfig.RandomFully
		ports []uint16
		want  []string
	}{
		{forkconfig.RandomFullyAlways, []uint16{8472}, []string{upReturn, upClear, upRandom}},
		{forkconfig.RandomFullyNever, []uint16{8472}, []string{upReturn, upClear, upPlain}},
		{forkconfig.RandomFullyAuto, nil, []string{upReturn, upClear, upRandom}},
		{forkconfig.RandomFullyAuto, []uint16{8472}, []string{upReturn, upClear, vx8472, upRandom}},
		{forkconfig.RandomFullyAuto, []uint16{8472, 4789}, []string{upReturn, upClear, vx4789, vx8472, upRandom}},
	} {
		n := &node{ports: tc.ports}
		fake := iptablestest.NewFake()
		ipt := Wrap(fake, tc.mode, NewVXLANPorts(n.read), 30*time.Second)
		p := newUpstreamProxier(t, ipt)
		start(p)
		wantRules(t, fake, tc.want...)
		if got, want := withoutPostrouting(t, fake), withoutPostrouting(t, plain); got != want {
			t.Errorf("%s %v: rules outside KUBE-POSTROUTING differ:\n%s\nupstream:\n%s", tc.mode, tc.ports, got, want)
		}
		// Upstream's next sync is a partial one; the rules stay.
		p.OnServiceSynced()
		wantRules(t, fake, tc.want...)
		if tc.mode == forkconfig.RandomFullyAuto && n.reads != 1 {
			t.Errorf("%s: %d reads of the VXLAN links for two syncs within syncPeriod/2, want 1", tc.mode, n.reads)
		}
	}
}

// TestVXLANChangeRewritesPostroutingOnly: in auto mode a VXLAN link that appears or goes is
// picked up by one restore of KUBE-POSTROUTING alone, without the proxier syncing.
func TestVXLANChangeRewritesPostroutingOnly(t *testing.T) {
	n := &node{}
	fake := &recorder{FakeIPTables: iptablestest.NewFake()}
	ports := NewVXLANPorts(n.read)
	now := time.Now()
	ports.now = func() time.Time { return now }
	d := Wrap(fake, forkconfig.RandomFullyAuto, ports, 30*time.Second).(*decorator)
	p := newUpstreamProxier(t, d)

	// Before upstream's first restore there is nothing to rewrite.
	n.set(8472)
	now = now.Add(time.Minute)
	if err := d.refresh(); err != nil || fake.count() != 0 {
		t.Fatalf("refresh before the proxier wrote anything: %v, %d restores", err, fake.count())
	}
	n.set()
	now = now.Add(time.Minute)
	start(p)
	wantRules(t, fake, upReturn, upClear, upRandom)
	before := withoutPostrouting(t, fake)

	for _, step := range []struct {
		ports    []uint16
		restores int
		want     []string
	}{
		{nil, 0, []string{upReturn, upClear, upRandom}},
		{[]uint16{8472}, 1, []string{upReturn, upClear, vx8472, upRandom}},
		{[]uint16{8472}, 0, []string{upReturn, upClear, vx8472, upRandom}},
		{[]uint16{4789, 8472}, 1, []string{upReturn, upClear, vx4789, vx8472, upRandom}},
		{nil, 1, []string{upReturn, upClear, upRandom}},
	} {
		n.set(step.ports...)
		now = now.Add(16 * time.Second)
		count := fake.count()
		if err := d.refresh(); err != nil {
			t.Fatalf("refresh: %v", err)
		}
		if got := fake.count() - count; got != step.restores {
			t.Errorf("ports %v: %d restores, want %d", step.ports, got, step.restores)
		}
		if step.restores == 1 {
			want := "*nat\n:KUBE-POSTROUTING - [0:0]\n" + strings.Join(step.want, "\n") + "\nCOMMIT\n"
			if got := fake.restores[len(fake.restores)-1]; got != want {
				t.Errorf("restore input:\n%s\nwant:\n%s", got, want)
			}
		}
		wantRules(t, fake, step.want...)
		if got := withoutPostrouting(t, fake); got != before {
			t.Errorf("other rules changed:\n%s", got)
		}
	}

	// A proxier sync writes the ports it read: a refresh with the same ports has nothing to do.
	n.set(4789)
	now = now.Add(31 * time.Second)
	p.OnServiceSynced()
	wantRules(t, fake, upReturn, upClear, vx4789, upRandom)
	count := fake.count()
	if err := d.refresh(); err != nil || fake.count() != count {
		t.Errorf("refresh after a proxier sync with the same ports: %v, %d restores", err, fake.count()-count)
	}
	n.set()
	now = now.Add(16 * time.Second)
	if err := d.refresh(); err != nil {
		t.Fatal(err)
	}

	// A failed restore is retried at the next refresh.
	n.set(8472)
	now = now.Add(16 * time.Second)
	fake.fail = errors.New("iptables-restore: exit status 4")
	if err := d.refresh(); err == nil {
		t.Errorf("refresh hid the restore error")
	}
	wantRules(t, fake, upReturn, upClear, upRandom)
	now = now.Add(16 * time.Second)
	if err := d.refresh(); err != nil {
		t.Fatal(err)
	}
	wantRules(t, fake, upReturn, upClear, vx8472, upRandom)

	// Once upstream's cleanup deletes the chain (after its jump), nothing is rewritten any more.
	if err := d.DeleteRule(utiliptables.TableNAT, utiliptables.ChainPostrouting, "-m", "comment", "--comment", "kubernetes postrouting rules", "-j", "KUBE-POSTROUTING"); err != nil {
		t.Fatal(err)
	}
	if err := d.Restore(utiliptables.TableNAT, []byte("*nat\n:KUBE-POSTROUTING - [0:0]\n-X KUBE-POSTROUTING\nCOMMIT\n"), utiliptables.NoFlushTables, utiliptables.RestoreCounters); err != nil {
		t.Fatal(err)
	}
	n.set(4789)
	now = now.Add(16 * time.Second)
	count = fake.count()
	if err := d.refresh(); err != nil || fake.count() != count {
		t.Errorf("refresh after cleanup: %v, %d restores", err, fake.count()-count)
	}
}

// TestMonitorWatchesVXLAN: the watch runs from Monitor (which upstream's proxier starts) until
// its stop channel closes.
func TestMonitorWatchesVXLAN(t *testing.T) {
	n := &node{}
	fake := iptablestest.NewFake()
	d := Wrap(fake, forkconfig.RandomFullyAuto, NewVXLANPorts(n.read), 40*time.Millisecond)
	if err := d.RestoreAll([]byte(upstreamInput), utiliptables.NoFlushTables, utiliptables.RestoreCounters); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { d.Monitor("KUBE-PROXY-CANARY", nil, func() {}, time.Hour, stop); close(done) }()
	n.set(8472)
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Contains(postrouting(t, fake), vx8472) {
		if time.Now().After(deadline) {
			t.Fatalf("the VXLAN link was not picked up: %v", postrouting(t, fake))
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	<-done
}

// parseErr is what utiliptables returns when iptables-restore rejects a line.
type parseErr int

func (e parseErr) Line() int     { return int(e) }
func (e parseErr) Error() string { return "iptables-restore: input error" }

// TestParseErrorLine: upstream logs the failing lines from its own input, so a parse error is
// reported at the line of that input, not of the rewritten one.
func TestParseErrorLine(t *testing.T) {
	lines := strings.Split(upstreamInput, "\n")
	random := slices.Index(lines, upRandom) + 1
	mark := slices.Index(lines, "-A KUBE-MARK-MASQ -j MARK --or-mark 0x00004000") + 1
	for _, tc := range []struct{ rewritten, want int }{
		{2, 2},                       // before the insertion
		{random, random},             // the first inserted rule: blamed on the rule it precedes
		{random + 1, random},         // the second inserted rule
		{random + 2, random},         // upstream's rule
		{random + 3, mark},           // after it
		{random + 100, random + 100}, // out of range: as is
	} {
		fake := &recorder{FakeIPTables: iptablestest.NewFake(), fail: parseErr(tc.rewritten)}
		d := Wrap(fake, forkconfig.RandomFullyAuto, NewVXLANPorts((&node{ports: []uint16{4789, 8472}}).read), time.Minute)
		err := d.RestoreAll([]byte(upstreamInput), utiliptables.NoFlushTables, utiliptables.RestoreCounters)
		pErr, ok := err.(utiliptables.ParseError)
		if !ok {
			t.Fatalf("error %v (%T) is not a ParseError", err, err)
		}
		if pErr.Line() != tc.want {
			t.Errorf("line %d of the rewritten input reported as %d, want %d", tc.rewritten, pErr.Line(), tc.want)
		}
	}
	// Unchanged input: the error as it is.
	fake := &recorder{FakeIPTables: iptablestest.NewFake(), fail: parseErr(7)}
	d := Wrap(fake, forkconfig.RandomFullyAuto, NewVXLANPorts((&node{}).read), time.Minute)
	if err := d.RestoreAll([]byte(upstreamInput), utiliptables.NoFlushTables, utiliptables.RestoreCounters); err != parseErr(7) {
		t.Errorf("error %v, want the original", err)
	}
}

func TestWrap(t *testing.T) {
	fake := iptablestest.NewFake()
	if got := Wrap(fake, forkconfig.RandomFullyAlways, nil, time.Minute); got != utiliptables.Interface(fake) {
		t.Errorf("always wraps: %T", got)
	}
	if _, ok := Wrap(fake, forkconfig.RandomFullyNever, nil, time.Minute).(*decorator); !ok {
		t.Errorf("never does not wrap")
	}
	n := &node{ports: []uint16{8472}}
	ipts := WrapAll(map[v1.IPFamily]utiliptables.Interface{
		v1.IPv4Protocol: fake, v1.IPv6Protocol: iptablestest.NewIPv6Fake(),
	}, forkconfig.RandomFullyAuto, n.read, time.Minute)
	for _, f := range []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol} {
		if err := ipts[f].RestoreAll([]byte(upstreamInput), utiliptables.NoFlushTables, utiliptables.RestoreCounters); err != nil {
			t.Fatal(err)
		}
		wantRules(t, ipts[f], upReturn, upClear, vx8472, upRandom)
	}
	if n.reads != 1 {
		t.Errorf("two families read the VXLAN links %d times, want 1 (shared)", n.reads)
	}
	// Non-nat restores pass through untouched.
	if err := ipts[v1.IPv4Protocol].Restore(utiliptables.TableFilter, []byte("*filter\n:KUBE-FORWARD - [0:0]\nCOMMIT\n"), utiliptables.NoFlushTables, utiliptables.RestoreCounters); err != nil {
		t.Fatal(err)
	}
}

func TestVXLANPortsCache(t *testing.T) {
	n := &node{ports: []uint16{8472, 4789}}
	c := NewVXLANPorts(n.read)
	now := time.Now()
	c.now = func() time.Time { return now }
	if got := c.Get(time.Minute); !slices.Equal(got, []uint16{4789, 8472}) {
		t.Errorf("Get = %v", got)
	}
	n.set(8472)
	now = now.Add(59 * time.Second)
	if got := c.Get(time.Minute); !slices.Equal(got, []uint16{4789, 8472}) || n.reads != 1 {
		t.Errorf("within maxAge: %v after %d reads", got, n.reads)
	}
	now = now.Add(time.Second)
	if got := c.Get(time.Minute); !slices.Equal(got, []uint16{8472}) || n.reads != 2 {
		t.Errorf("after maxAge: %v after %d reads", got, n.reads)
	}
	n.err = errors.New("dump interrupted")
	now = now.Add(time.Minute)
	if got := c.Get(time.Minute); !slices.Equal(got, []uint16{8472}) || n.reads != 3 {
		t.Errorf("failed read: %v after %d reads", got, n.reads)
	}
	now = now.Add(time.Second)
	if c.Get(time.Minute); n.reads != 3 {
		t.Errorf("a failed read is retried at once")
	}
}

// TestWatchStops: the VXLAN watch ends with its stop channel.
func TestWatchStops(t *testing.T) {
	d := Wrap(iptablestest.NewFake(), forkconfig.RandomFullyAuto, NewVXLANPorts((&node{}).read), time.Hour).(*decorator)
	stop := make(chan struct{})
	close(stop)
	done := make(chan struct{})
	go func() { d.watchVXLAN(stop); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the watch did not stop")
	}
}

// TestRewriteSeesChain: what a restore input says about KUBE-POSTROUTING, which the watch
// rewrites from.
func TestRewriteSeesChain(t *testing.T) {
	for _, tc := range []struct {
		name, in         string
		flushed, deleted bool
		rules            []string
	}{
		{"full", upstreamInput, true, false, []string{upReturn, upClear, upRandom}},
		{"partial", "*nat\n:KUBE-SVC-X - [0:0]\nCOMMIT\n", false, false, nil},
		{"cleanup", "*nat\n:KUBE-POSTROUTING - [0:0]\n-X KUBE-POSTROUTING\nCOMMIT\n", true, true, nil},
		{"delete only", "*nat\n-X KUBE-POSTROUTING\nCOMMIT\n", false, true, nil},
		{"filter", "*filter\n:KUBE-POSTROUTING - [0:0]\n-X KUBE-POSTROUTING\n" + upRandom + "\nCOMMIT\n", false, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rw := rewriteInput([]byte(tc.in), "", forkconfig.RandomFullyAuto, []uint16{8472})
			if rw.flushed != tc.flushed || rw.deleted != tc.deleted || !slices.Equal(rw.postrouting, tc.rules) {
				t.Errorf("flushed %v deleted %v rules %q; want %v %v %q", rw.flushed, rw.deleted, rw.postrouting, tc.flushed, tc.deleted, tc.rules)
			}
		})
	}
}
