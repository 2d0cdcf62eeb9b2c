package ipvs

import (
	"net/netip"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/objects"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/sockdiag"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/desired"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/internal/fixture"
)

// TestNodeAddressOnHostListenerPortRefused: an externalIP equal to this node's address is
// refused on the ports host processes listen on (kubelet on every address, sshd on the node's
// address), served on the others as upstream; a listener that opens later is protected at the
// next verification, one that closes frees the port again.
func TestNodeAddressOnHostListenerPortRefused(t *testing.T) {
	e, rec := policyEnv(t, nil)
	e.listeners.Listen(sockdiag.TCP, "0.0.0.0", 10250)
	e.listeners.Listen(sockdiag.TCP, "192.168.0.10", 22)
	e.listeners.Listen(sockdiag.UDP, "0.0.0.0", 8080) // another protocol: no conflict
	node := "192.168.0.10"
	svc := fixture.Service("grab", "10.96.0.80", fixture.ExternalIPs(node), func(s *v1.Service) {
		s.Spec.Ports = []v1.ServicePort{
			{Name: "kubelet", Port: 10250, Protocol: v1.ProtocolTCP},
			{Name: "ssh", Port: 22, Protocol: v1.ProtocolTCP},
			{Name: "web", Port: 8080, Protocol: v1.ProtocolTCP},
		}
	})
	e.start(svc)
	for _, port := range []uint16{10250, 22} {
		if e.hasVirtualServer(fixture.Key(node, objects.TCP, port)) || e.entries("KUBE-EXTERNAL-IP")[node+",tcp:"+itoa(port)] {
			t.Errorf("%s:%d, where a host process listens, is captured", node, port)
		}
	}
	if !e.hasVirtualServer(fixture.Key(node, objects.TCP, 8080)) || e.bound()[node] {
		t.Errorf("%s:8080 should be served through IPVS without a binding, as upstream", node)
	}
	evs := strings.Join(drain(rec), "\n")
	for _, want := range []string{"0.0.0.0:10250/TCP", "192.168.0.10:22/TCP"} {
		if !strings.Contains(evs, want) {
			t.Errorf("events do not name the listener %s:\n%s", want, evs)
		}
	}

	e.listeners.ListenDualStack(sockdiag.TCP, 8080)
	e.verifySync()
	if e.hasVirtualServer(fixture.Key(node, objects.TCP, 8080)) {
		t.Errorf("a dual-stack listener on 8080 opened: %s:8080 is still captured", node)
	}
	e.listeners.SetListeners()
	e.verifySync()
	if !e.hasVirtualServer(fixture.Key(node, objects.TCP, 22)) || !e.hasVirtualServer(fixture.Key(node, objects.TCP, 8080)) {
		t.Errorf("the listeners closed: the ports should be served again")
	}
}

// TestOwnNodeObjectAddressNotBound: this node's Node object lists an address on no interface
// (a cloud's external IP). As an externalIP or ingress IP it is served as this node's own
// address: through IPVS, never bound to kube-ipvs0.
func TestOwnNodeObjectAddressNotBound(t *testing.T) {
	e, _ := policyEnv(t, nil)
	public := "203.0.113.50"
	e.p.OnNodeAddresses(fixture.Node, []netip.Addr{fixture.NodeIP4, fixture.Addr(public)})
	svc := fixture.Service("pub", "10.96.0.81", fixture.ExternalIPs(public))
	lb := fixture.Service("publb", "10.96.0.82", fixture.LoadBalancer(30082, v1.LoadBalancerIngress{IP: public}), func(s *v1.Service) { s.Spec.Ports[0].Port = 81 })
	e.start(svc, lb)
	if e.bound()[public] {
		t.Errorf("this node's own address %s is bound to kube-ipvs0", public)
	}
	if !e.hasVirtualServer(fixture.Key(public, objects.TCP, 80)) || !e.hasVirtualServer(fixture.Key(public, objects.TCP, 81)) {
		t.Errorf("this node's own address should still be served through IPVS")
	}
	// The Node object drops the address: an ordinary external address again, bound.
	e.p.OnNodeAddresses(fixture.Node, []netip.Addr{fixture.NodeIP4})
	e.sync()
	if !e.bound()[public] {
		t.Errorf("no longer this node's: %s should be bound as upstream", public)
	}
}

func itoa(p uint16) string { return desired.EntryPort(int(p)) }
