package ipvs

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/sockdiag"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/desired"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/internal/fixture"
)

// TestClusterWideDecisionReportedOnce: five nodes' proxiers see the same bad Services. A
// refusal every node makes is one Event in the cluster; a refusal that depends on the node (a
// host listener on its own address) is one Event per node that makes it.
func TestClusterWideDecisionReportedOnce(t *testing.T) {
	nodes := map[string]netip.Addr{}
	for i := range 5 {
		nodes[fmt.Sprintf("node-%c", 'a'+i)] = netip.AddrFrom4([4]byte{192, 168, 0, byte(10 + i)})
	}
	var svcs []*v1.Service
	for i := range 20 {
		svc := fixture.Service(fmt.Sprintf("bad%d", i), fmt.Sprintf("10.96.1.%d", i+1), fixture.ExternalIPs("127.0.0.1"))
		svc.UID = types.UID(fmt.Sprintf("uid-%d", i))
		svcs = append(svcs, svc)
	}
	perNode := fixture.Service("kubelet-grab", "10.96.2.1", fixture.ExternalIPs("192.168.0.10"), func(s *v1.Service) { s.Spec.Ports[0].Port = 10250 })

	total := map[string]int{}
	reporters := map[string]bool{}
	for name := range nodes {
		e, rec := policyEnv(t, nil)
		e.p.nodeName, e.p.policy.nodeName, e.p.intake = name, name, newClusterIntake(e.p.family, name)
		if err := e.nd.SetAddresses("eth0", nodes[name]); err != nil {
			t.Fatal(err)
		}
		e.listeners.Listen(sockdiag.TCP, "0.0.0.0", 10250)
		for n, a := range nodes {
			e.p.OnNodeAddresses(n, []netip.Addr{a})
		}
		var objs []any
		for _, s := range svcs {
			objs = append(objs, s)
		}
		e.start(append(objs, perNode)...)
		// The fake recorder does not print the object: the Services are told apart by the
		// order their events come in, which is sorted by name.
		for i, ev := range drain(rec) {
			if strings.Contains(ev, "loopback") {
				reporters[name] = true
				ev = fmt.Sprintf("%s (event %d of %s)", ev, i, name)
			}
			total[ev]++
		}
	}
	loopback, listener := 0, 0
	for ev, n := range total {
		switch {
		case strings.Contains(ev, "loopback"):
			loopback += n
		case strings.Contains(ev, "10250"):
			listener += n
		}
	}
	if loopback != len(svcs) {
		t.Errorf("%d loopback refusal events for %d Services, want one each", loopback, len(svcs))
	}
	if len(reporters) < 2 {
		t.Errorf("every Service reported by %v: the reporting should spread over the nodes", reporters)
	}
	// Only node-a has 192.168.0.10: only it refuses the kubelet port, naming itself.
	if listener != 1 {
		t.Errorf("%d host-listener events, want 1 (node-a's): %v", listener, total)
	}
}

// TestLongAnnotationValueEventKept: an annotation value long enough to push the Event note past
// the apiserver's 1 KiB limit is cut, so the Event is still recorded.
func TestLongAnnotationValueEventKept(t *testing.T) {
	e, rec := policyEnv(t, nil)
	long := strings.Repeat("é", 4096)
	svc := lbService("lb", "10.96.0.90", func(s *v1.Service) {
		s.Annotations = map[string]string{desired.AnnotationBindLBIngress: long}
	})
	e.start(svc)
	evs := drain(rec)
	if len(evs) != 1 || !strings.Contains(evs[0], "InvalidAnnotation") {
		t.Fatalf("events %q, want one InvalidAnnotation", evs)
	}
	// FakeRecorder prints "Warning InvalidAnnotation <note>".
	note := strings.TrimPrefix(evs[0], "Warning InvalidAnnotation ")
	if len(note) > maxEventNote || !strings.Contains(note, "...") {
		t.Errorf("note of %d bytes, want at most %d and the value cut: %.200s", len(note), maxEventNote, note)
	}
}

func TestShorten(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"0123456789", 10, "0123456789"},
		{"0123456789a", 10, "0123456..."},
		{"ééééé", 8, "éé..."}, // 2-byte runes: never cut inside one
	} {
		if got := shorten(tc.in, tc.n); got != tc.want {
			t.Errorf("shorten(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
