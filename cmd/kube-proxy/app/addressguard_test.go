package app

import (
	"context"
	"net/netip"
	"reflect"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// recordingHandler is a ClusterAddressHandler that keeps the last state it was given.
type recordingHandler struct {
	mu    sync.Mutex
	nodes map[string][]netip.Addr
	api   []netip.AddrPort
}

func (r *recordingHandler) OnNodeAddresses(node string, addrs []netip.Addr) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nodes[node] = addrs
}
func (r *recordingHandler) OnNodeDelete(node string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.nodes, node)
}
func (r *recordingHandler) OnAPIServerEndpoints(eps []netip.AddrPort) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.api = eps
}

func (r *recordingHandler) snapshot() (map[string][]netip.Addr, []netip.AddrPort) {
	r.mu.Lock()
	defer r.mu.Unlock()
	nodes := map[string][]netip.Addr{}
	for k, v := range r.nodes {
		nodes[k] = v
	}
	return nodes, r.api
}

func testNode(name string, addrs ...v1.NodeAddress) *v1.Node {
	return &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"big": "label"}},
		Spec:       v1.NodeSpec{PodCIDR: "10.244.0.0/24"},
		Status:     v1.NodeStatus{Addresses: addrs, Images: []v1.ContainerImage{{Names: []string{"x"}}}},
	}
}

func apiSlice(name string, addrs ...string) *discovery.EndpointSlice {
	s := &discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{discovery.LabelServiceName: "kubernetes"}},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: ptr.To("https"), Port: ptr.To[int32](6443)}},
	}
	for _, a := range addrs {
		s.Endpoints = append(s.Endpoints, discovery.Endpoint{Addresses: []string{a}})
	}
	return s
}

func TestClusterAddressInformers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	other := apiSlice("other")
	other.Namespace, other.Labels = "kube-system", map[string]string{discovery.LabelServiceName: "kubernetes"}
	client := fake.NewSimpleClientset(
		testNode("node-a", v1.NodeAddress{Type: v1.NodeInternalIP, Address: "192.168.0.10"}, v1.NodeAddress{Type: v1.NodeHostName, Address: "node-a"}),
		testNode("node-b", v1.NodeAddress{Type: v1.NodeInternalIP, Address: "192.168.0.11"}, v1.NodeAddress{Type: v1.NodeExternalIP, Address: "203.0.113.50"}),
		apiSlice("kubernetes", "192.168.0.10"),
		func() *discovery.EndpointSlice {
			s := apiSlice("not-the-apiserver", "10.0.0.1")
			s.Labels[discovery.LabelServiceName] = "web"
			return s
		}(),
		other,
	)
	h := &recordingHandler{nodes: map[string][]netip.Addr{}}
	synced := runClusterAddressInformers(ctx, client, 0, h)
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		t.Fatal("informers did not sync")
	}
	nodes, api := h.snapshot()
	want := map[string][]netip.Addr{
		"node-a": {netip.MustParseAddr("192.168.0.10")},
		"node-b": {netip.MustParseAddr("192.168.0.11"), netip.MustParseAddr("203.0.113.50")},
	}
	if !reflect.DeepEqual(nodes, want) {
		t.Errorf("nodes %v, want %v", nodes, want)
	}
	if !reflect.DeepEqual(api, []netip.AddrPort{netip.MustParseAddrPort("192.168.0.10:6443")}) {
		t.Errorf("apiserver endpoints %v, want only default/kubernetes's 192.168.0.10:6443", api)
	}

	// A second apiserver slice adds to the first; deleting a Node forgets it.
	if _, err := client.DiscoveryV1().EndpointSlices("default").Create(ctx, apiSlice("kubernetes-2", "192.168.0.12"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.CoreV1().Nodes().Delete(ctx, "node-b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
		nodes, api := h.snapshot()
		_, hasB := nodes["node-b"]
		return !hasB && len(api) == 2, nil
	})
	if err != nil {
		nodes, api := h.snapshot()
		t.Errorf("after the changes: nodes %v, apiserver %v", nodes, api)
	}
}

func TestStripNodeKeepsNameAndAddresses(t *testing.T) {
	n := testNode("node-a", v1.NodeAddress{Type: v1.NodeInternalIP, Address: "192.168.0.10"})
	got, err := stripNode(n)
	if err != nil {
		t.Fatal(err)
	}
	want := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}, Status: v1.NodeStatus{Addresses: n.Status.Addresses}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stripNode = %+v, want %+v", got, want)
	}
}
