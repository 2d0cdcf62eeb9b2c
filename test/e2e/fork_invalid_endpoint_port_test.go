package e2e

// Issue 27 (4): an EndpointSlice endpoint whose port is outside 1-65535. The apiserver does not
// range-check EndpointSlice ports, so a manually managed slice of a selector-less Service can say
// 70000.
//
// The Service "bad" (port 80) has two slices: one with port 70000 and an endpoint on node1 (the
// pod iep-local, which also listens on 4464 = 70000 mod 65536), one with port 8080 and an endpoint
// on node2 (iep-remote). Then a Service "after" is created (endpoint iep-remote:8080).
//
//   - Ours skips the endpoint (InvalidEndpoint Event): node1's virtual server of "bad" holds only
//     iep-remote:8080, every connection from a pod on node1 to "bad" is answered by iep-remote,
//     and "after" is programmed on node1 (virtual server, cluster IP bound) and reachable from a
//     pod on node1 within the usual time. (Before the fix, the local endpoint's KUBE-LOOP-BACK
//     entry "<ip>,tcp:70000,<ip>" failed ours' single ipset restore at every sync, and nothing
//     after it, "after" included, was programmed.)
//   - Upstream is not wedged (it adds ipset entries one `ipset add` at a time, logging the
//     refused one), but it writes the endpoint as a real server on port uint16(70000) = 4464:
//     read back from node1's kernel, and connections to "bad" from the pod on node1 are answered
//     by iep-local on a port no object names.

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/framework"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func init() { register("ForkInvalidEndpointPort", testForkInvalidEndpointPort) }

const (
	badEndpointPort = 70000
	wrappedPort     = badEndpointPort % 65536 // 4464: what uint16(70000) is
)

func testForkInvalidEndpointPort(t *testing.T, c *framework.Cluster) {
	ns := c.Namespace(t)
	node1 := c.Node(1)
	local := c.AddPod(t, 1, "iep-local", 8080, wrappedPort)
	remote := c.AddPod(t, 2, "iep-remote", 8080)
	client := c.AddPod(t, 1, "iep-client", 9999)
	ports := []framework.ServicePort{{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 80, Target: 8080}}
	// In this order: the Service with an empty slice, the slice with port 70000 (endpoint on
	// node1), then the valid endpoint into the first slice. A watch delivers a resource's events
	// in order, so once node1's kernel has the valid endpoint, node1 has read the bad one.
	bad := c.CreateService(t, ns, "bad", ports, nil, nil)
	name, proto, port, ready, nodeName := "tcp", corev1.ProtocolTCP, int32(badEndpointPort), true, node1.Name
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "bad-port-70000", Namespace: ns, Labels: map[string]string{
			discoveryv1.LabelServiceName: bad.Name,
			discoveryv1.LabelManagedBy:   "e2e.kube-proxy-ipvs",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Protocol: &proto, Port: &port}},
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{local.IP.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready},
			NodeName:   &nodeName,
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: local.Name},
		}},
	}
	if _, err := c.Client.DiscoveryV1().EndpointSlices(ns).Create(context.Background(), slice, metav1.CreateOptions{}); err != nil {
		t.Fatalf("the apiserver refused an EndpointSlice with port %d: %v", badEndpointPort, err)
	}
	c.SetEndpoints(t, bad, []*framework.Pod{remote})
	t.Logf("service %s/bad %s:80: slice %s (%s:%d, node1) and %s/bad-e2e (%s:8080, node2)",
		ns, bad.Spec.ClusterIP, slice.Name, local.IP, badEndpointPort, ns, remote.IP)

	badAddr := net.JoinHostPort(bad.Spec.ClusterIP, "80")
	wrapped, good := ep(local.IP, wrappedPort), ep(remote.IP, 8080)
	if c.Impl.Name == "upstream" {
		// Not wedged: a Service created after the bad slice is programmed (parity; upstream's
		// failure is the real server below). Created now, so that its wait overlaps the others.
		after := c.CreateService(t, ns, "after", ports, []*framework.Pod{remote}, nil)
		c.Eventually(t, fmt.Sprintf("node1's virtual server %s holds %s and %s (70000 written as uint16)", badAddr, good, wrapped), func() error {
			return virtualServerMismatch(c, node1, bad.Spec.ClusterIP, 80, "tcp", good, wrapped)
		})
		seen := map[string]int{}
		c.Eventually(t, "a connection to "+badAddr+" from a pod on node1 is answered by "+local.Name, func() error {
			r, err := framework.Echo(client.NS, "tcp", badAddr, 2*time.Second)
			if err != nil {
				return err
			}
			seen[r.Pod]++
			if seen[local.Name] == 0 {
				return fmt.Errorf("answers so far: %v", seen)
			}
			return nil
		})
		t.Logf("upstream: %s answered by %v (%s on port %d: a port no object names)", badAddr, seen, local.Name, wrappedPort)
		c.EventuallyEcho(t, client.NS, "tcp", net.JoinHostPort(after.Spec.ClusterIP, "80"), expectFrom(remote.Name, client.IP.String()))
		return
	}

	c.Eventually(t, "node1's virtual server "+badAddr+" holds the valid endpoint", func() error {
		return virtualServerMismatch(c, node1, bad.Spec.ClusterIP, 80, "tcp", good)
	})
	// node1 has read the bad slice: a Service created now must reach node1's kernel.
	start := time.Now()
	after := c.CreateService(t, ns, "after", ports, []*framework.Pod{remote}, nil)
	afterAddr := net.JoinHostPort(after.Spec.ClusterIP, "80")
	c.EventuallyEcho(t, client.NS, "tcp", afterAddr, expectFrom(remote.Name, client.IP.String()))
	expectVirtualServer(t, c, node1, after.Spec.ClusterIP, 80, "tcp", good)
	expectDummyAddr(t, node1, after.Spec.ClusterIP, true)
	t.Logf("service %s created after the bad endpoint: programmed on node1 and answering in %v",
		afterAddr, time.Since(start).Round(time.Millisecond))

	all, err := c.IPVSRealServers(node1, bad.Spec.ClusterIP, 80, "tcp")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all[0].Addr != good {
		c.DumpState(t)
		t.Fatalf("node1: %s holds %v, want only %s (the endpoint with port %d is no real server)", badAddr, all, good, badEndpointPort)
	}
	for i := 0; i < 8; i++ {
		r, err := framework.Echo(client.NS, "tcp", badAddr, 3*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", badAddr, err)
		}
		if r.Pod != remote.Name {
			t.Fatalf("%s answered by %s, want %s only", badAddr, r.Pod, remote.Name)
		}
	}
	// The local endpoint's hairpin entry would have been "<ip>,tcp:70000,<ip>".
	loop, err := ipsetEntries(node1, "KUBE-LOOP-BACK")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range loop {
		if strings.HasPrefix(e, local.IP.String()+",") {
			t.Fatalf("node1 KUBE-LOOP-BACK has %s for the skipped endpoint", e)
		}
	}
	t.Logf("node1: %s holds only %s; 8 connections answered by %s; KUBE-LOOP-BACK has no entry for %s", badAddr, good, remote.Name, local.IP)
	c.Eventually(t, "InvalidEndpoint Event on "+bad.Name, func() error {
		evs, err := serviceEvents(c, ns, bad.Name, "InvalidEndpoint")
		if err != nil {
			return err
		}
		for _, e := range evs {
			if strings.Contains(e.Message, fmt.Sprint(badEndpointPort)) {
				t.Logf("event: %s", e.Message)
				return nil
			}
		}
		return fmt.Errorf("%d InvalidEndpoint events, none naming port %d", len(evs), badEndpointPort)
	})
}
