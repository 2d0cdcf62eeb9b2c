package e2e

// Bulk Services and whole-node kernel dumps for the fault scenarios that need a large sync
// (fault_killed_first_sync_test.go, tampering_test.go).

import (
	"context"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/framework"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

// bulkService is one of many ClusterIP Services (port 80/TCP) with two endpoints on port 8080
// that no pod holds (10.250.x.y on node2, 10.251.x.y on node3): real servers for the kernel,
// never traffic.
type bulkService struct {
	Name      string
	ClusterIP string
	Endpoints []string // ip:port
}

func bulkEndpoint(net2 byte, i int) string {
	return net.JoinHostPort(net.IPv4(10, net2, byte(i/250), byte(1+i%250)).String(), "8080")
}

// envInt reads a positive integer from the environment, def when unset or invalid.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// bulkLabel marks the bulk Services and their slices (value: the name prefix).
const bulkLabel = "e2e.kube-proxy-ipvs/bulk"

// createBulk creates n Services named prefix-NNNN in ns, each with its EndpointSlice, with 16
// requests in flight. The Services are deleted at the end of the test by the namespace's cleanup.
func createBulk(t *testing.T, c *framework.Cluster, ns, prefix string, n int) []bulkService {
	t.Helper()
	cs, err := framework.NewBulkClient(c.Cfg.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out := make([]bulkService, n)
	errs := make(chan error, n)
	work := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				b, err := createOneBulk(cs, ns, prefix, i)
				if err != nil {
					errs <- err
					continue
				}
				out[i] = b
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatalf("creating %d Services: %v", n, err)
	}
	t.Logf("created %d Services (%s-*) with their EndpointSlices in %v", n, prefix, time.Since(start).Round(time.Millisecond))
	return out
}

func createOneBulk(cs kubernetes.Interface, ns, prefix string, i int) (bulkService, error) {
	ctx := context.Background()
	name := fmt.Sprintf("%s-%04d", prefix, i)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{bulkLabel: prefix}},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: []corev1.ServicePort{
			{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
	svc, err := cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		return bulkService{}, fmt.Errorf("service %s: %w", name, err)
	}
	b := bulkService{Name: name, ClusterIP: svc.Spec.ClusterIP, Endpoints: []string{bulkEndpoint(250, i), bulkEndpoint(251, i)}}
	pname, proto, port, ready := "tcp", corev1.ProtocolTCP, int32(8080), true
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-e2e", Namespace: ns, Labels: map[string]string{
			discoveryv1.LabelServiceName: name,
			discoveryv1.LabelManagedBy:   "e2e.kube-proxy-ipvs",
			bulkLabel:                    prefix,
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &pname, Protocol: &proto, Port: &port}},
	}
	for k, e := range b.Endpoints {
		host, _, _ := net.SplitHostPort(e)
		node := fmt.Sprintf("node%d", 2+k)
		slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
			Addresses: []string{host}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}, NodeName: &node})
	}
	if _, err := cs.DiscoveryV1().EndpointSlices(ns).Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		return bulkService{}, fmt.Errorf("endpointslice %s: %w", slice.Name, err)
	}
	return b, nil
}

// deleteBulk deletes the Services named in bs, 16 requests in flight, and their slices: with
// them one at a time, or with one DeleteCollection per name prefix when all (every Service of
// those prefixes is in bs). The apiserver serves no DeleteCollection for Services.
func deleteBulk(t *testing.T, c *framework.Cluster, ns string, bs []bulkService, all bool) {
	t.Helper()
	cs, err := framework.NewBulkClient(c.Cfg.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	work := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []string
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for name := range work {
				err := cs.CoreV1().Services(ns).Delete(ctx, name, metav1.DeleteOptions{})
				if err == nil && !all {
					err = cs.DiscoveryV1().EndpointSlices(ns).Delete(ctx, name+"-e2e", metav1.DeleteOptions{})
				}
				if err != nil {
					mu.Lock()
					failed = append(failed, fmt.Sprintf("%s: %v", name, err))
					mu.Unlock()
				}
			}
		}()
	}
	prefixes := map[string]bool{}
	for _, b := range bs {
		work <- b.Name
		prefixes[b.Name[:strings.LastIndex(b.Name, "-")]] = true
	}
	close(work)
	wg.Wait()
	if len(failed) > 0 {
		t.Fatalf("deleting Services: %v", failed)
	}
	if all {
		for p := range prefixes {
			sel := metav1.ListOptions{LabelSelector: bulkLabel + "=" + p}
			if err := cs.DiscoveryV1().EndpointSlices(ns).DeleteCollection(context.Background(), metav1.DeleteOptions{}, sel); err != nil {
				t.Fatalf("EndpointSlices %s-*: %v", p, err)
			}
		}
	}
	t.Logf("deleted %d Services and their slices in %v", len(bs), time.Since(start).Round(time.Millisecond))
}

// bulkMismatch says how node's kernel differs from what present (and absent) Services need:
// each present one's virtual server <ClusterIP>:80 with exactly its two real servers (weight
// above 0), its cluster IP on kube-ipvs0; no virtual server and no kube-ipvs0 address for an
// absent one. "" when it matches. st is a fresh read.
func bulkMismatch(st *framework.IPVSState, present, absent []bulkService) string {
	bound := map[string]bool{}
	for _, a := range st.DummyAddrs {
		bound[a] = true
	}
	var bad []string
	for _, b := range present {
		key := "TCP " + net.JoinHostPort(b.ClusterIP, "80")
		vs, ok := st.Services[key]
		var got []string
		for _, d := range vs.Dests {
			if d.Weight > 0 {
				got = append(got, d.Addr)
			}
		}
		want := append([]string(nil), b.Endpoints...)
		sort.Strings(got)
		sort.Strings(want)
		switch {
		case !ok:
			bad = append(bad, "no virtual server "+key)
		case strings.Join(got, ",") != strings.Join(want, ","):
			bad = append(bad, fmt.Sprintf("%s real servers %v, want %v", key, vs.Dests, want))
		}
		if !bound[b.ClusterIP] {
			bad = append(bad, b.ClusterIP+" not on kube-ipvs0")
		}
	}
	for _, b := range absent {
		if _, ok := st.Services["TCP "+net.JoinHostPort(b.ClusterIP, "80")]; ok {
			bad = append(bad, "virtual server of deleted "+b.Name+" ("+b.ClusterIP+")")
		}
		if bound[b.ClusterIP] {
			bad = append(bad, "kube-ipvs0 still holds "+b.ClusterIP+" of deleted "+b.Name)
		}
	}
	if len(bad) == 0 {
		return ""
	}
	if len(bad) > 8 {
		bad = append(bad[:8], fmt.Sprintf("... and %d more", len(bad)-8))
	}
	return fmt.Sprintf("%d differences: %s", len(bad), strings.Join(bad, "; "))
}

// waitBulk waits (up to budget) until every node of nodes matches present/absent.
func waitBulk(t *testing.T, c *framework.Cluster, nodes []*framework.Node, present, absent []bulkService, budget time.Duration) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(budget)
	for _, n := range nodes {
		for {
			st, err := framework.ReadIPVS(n)
			msg := ""
			if err != nil {
				msg = err.Error()
			} else {
				msg = bulkMismatch(st, present, absent)
			}
			if msg == "" {
				break
			}
			if time.Now().After(deadline) {
				c.DumpState(t)
				t.Fatalf("%s after %v: %s", n.Name, budget, msg)
			}
			time.Sleep(time.Second)
		}
	}
	t.Logf("%d node(s) hold the %d Services (and none of %d deleted ones) after %v", len(nodes), len(present), len(absent), time.Since(start).Round(time.Millisecond))
}

// kernelDump is everything an IPVS proxier owns in a node, read back, in a comparable form.
type kernelDump struct {
	IPVS  []string // "TCP 10.96.0.10:80 rr flags=0x0 timeout=0 -> 10.244.2.10:8080/1 ..." (no counters)
	Addrs []string // kube-ipvs0
	Sets  []string // "SET entry", "SET" for an empty set; every KUBE-* set
	Rules []string // iptables-save of every table, counters zeroed, sorted, duplicates kept
}

func dumpKernel(node *framework.Node) (*kernelDump, error) {
	st, err := framework.ReadIPVS(node)
	if err != nil {
		return nil, err
	}
	d := &kernelDump{Addrs: st.DummyAddrs}
	for k, v := range st.Services {
		line := fmt.Sprintf("%s %s flags=%#x timeout=%d ->", k, v.Sched, v.Flags, v.Timeout)
		for _, rs := range v.Dests {
			line += fmt.Sprintf(" %s/%d", rs.Addr, rs.Weight)
		}
		d.IPVS = append(d.IPVS, line)
	}
	sort.Strings(d.IPVS)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := node.Run(ctx, "ipset", "save")
	if err != nil {
		return nil, err
	}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 2 && f[0] == "create" && strings.HasPrefix(f[1], "KUBE-"):
			d.Sets = append(d.Sets, f[1])
		case len(f) >= 3 && f[0] == "add" && strings.HasPrefix(f[1], "KUBE-"):
			d.Sets = append(d.Sets, f[1]+" "+f[2])
		}
	}
	sort.Strings(d.Sets)
	rules, err := node.Run(ctx, "iptables-save")
	if err != nil {
		return nil, err
	}
	_, norm := normalizeIPTables(rules)
	d.Rules = strings.Split(strings.TrimSpace(norm), "\n")
	return d, nil
}

// diff lists what differs between two dumps (empty: identical), at most a few lines per part.
func (a *kernelDump) diff(b *kernelDump) []string {
	var out []string
	part := func(what string, x, y []string) {
		cx, cy := map[string]int{}, map[string]int{}
		for _, l := range x {
			cx[l]++
		}
		for _, l := range y {
			cy[l]++
		}
		var lines []string
		for l, n := range cx {
			if cy[l] != n {
				lines = append(lines, fmt.Sprintf("%s: %q x%d -> x%d", what, l, n, cy[l]))
			}
		}
		for l, n := range cy {
			if _, ok := cx[l]; !ok {
				lines = append(lines, fmt.Sprintf("%s: %q x0 -> x%d", what, l, n))
			}
		}
		sort.Strings(lines)
		if len(lines) > 6 {
			lines = append(lines[:6], fmt.Sprintf("%s: ... %d more", what, len(lines)-6))
		}
		out = append(out, lines...)
	}
	part("ipvs", a.IPVS, b.IPVS)
	part("kube-ipvs0", a.Addrs, b.Addrs)
	part("ipset", a.Sets, b.Sets)
	part("iptables", a.Rules, b.Rules)
	return out
}

// stableDump dumps node until two dumps a second apart agree, within budget.
func stableDump(t *testing.T, c *framework.Cluster, node *framework.Node, budget time.Duration) *kernelDump {
	t.Helper()
	deadline := time.Now().Add(budget)
	var prev *kernelDump
	for {
		cur, err := dumpKernel(node)
		if err != nil {
			t.Fatalf("%s: %v", node.Name, err)
		}
		if prev != nil && len(prev.diff(cur)) == 0 {
			return cur
		}
		if time.Now().After(deadline) && prev != nil {
			c.DumpState(t)
			t.Fatalf("%s: kernel state still changing after %v: %v", node.Name, budget, prev.diff(cur))
		}
		prev = cur
		time.Sleep(time.Second)
	}
}

// pruneLive removes from d the virtual servers, kube-ipvs0 addresses and service-CIDR ipset
// entries of no live Service (earlier scenarios' deleted Services whose connections still drain).
func (d *kernelDump) pruneLive(l liveSet) {
	_, svcCIDR, _ := net.ParseCIDR(framework.ServiceCIDR)
	var ipvs []string
	for _, line := range d.IPVS {
		f := strings.Fields(line)
		if ip, port, err := net.SplitHostPort(f[1]); err == nil && !l.ips[ip] && !l.nodePorts[port] {
			continue
		}
		ipvs = append(ipvs, line)
	}
	d.IPVS = ipvs
	var addrs []string
	for _, a := range d.Addrs {
		if l.ips[a] {
			addrs = append(addrs, a)
		}
	}
	d.Addrs = addrs
	var sets []string
	for _, line := range d.Sets {
		if _, e, ok := strings.Cut(line, " "); ok {
			first, _, _ := strings.Cut(e, ",")
			if ip := net.ParseIP(first); ip != nil && svcCIDR.Contains(ip) && !l.ips[first] {
				continue
			}
		}
		sets = append(sets, line)
	}
	d.Sets = sets
}
