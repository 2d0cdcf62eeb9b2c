package diagnose

import (
	"fmt"
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
)

// BenchmarkRunS1000 is the checks' share of a diagnose run at S=1000 Services (one LoadBalancer
// in ten, each Service with an EndpointSlice of 10 endpoints, programmed on the node). Collection
// (the apiserver lists, the netlink dumps, iptables-save) is measured by make bench in the lab.
func BenchmarkRunS1000(b *testing.B) {
	s := node()
	kube := &s.Links[len(s.Links)-1]
	for i := range 1000 {
		ip := fmt.Sprintf("10.97.%d.%d", i/250, i%250+1)
		svc := service("bench", fmt.Sprintf("s%d", i), ip, corev1.ProtocolTCP, 80)
		addrs := []string{ip}
		if i%10 == 0 {
			lb := fmt.Sprintf("203.0.%d.%d", 113+i/2500, i/10+1)
			svc.Spec.Type = corev1.ServiceTypeLoadBalancer
			svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: lb}}
			addrs = append(addrs, lb)
		}
		s.Services = append(s.Services, svc)
		var eps []discoveryv1.Endpoint
		for j := range 10 {
			eps = append(eps, discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("10.244.%d.%d", j, i%250+1)}})
		}
		s.EndpointSlices = append(s.EndpointSlices, discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: svc.Name, Labels: map[string]string{discoveryv1.LabelServiceName: svc.Name}},
			Endpoints:  eps,
		})
		for _, a := range addrs {
			kube.Addrs = append(kube.Addrs, netip.MustParseAddr(a))
			s.IPVS = append(s.IPVS, kipvs.VirtualServer{Key: kipvs.Key{Address: netip.MustParseAddr(a), Protocol: kipvs.TCP, Port: 80}, Scheduler: "rr"})
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if r := Run(s); len(r.Checks) == 0 {
			b.Fatal("no checks ran")
		}
	}
}
