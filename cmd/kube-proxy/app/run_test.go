package app

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
)

// recorder is a ServiceHandler and EndpointSliceHandler that counts what it was told, and when.
type recorder struct {
	mu                               sync.Mutex
	services, slices                 int
	servicesAtSynced, slicesAtSynced int
	servicesSynced, slicesSynced     bool
}

func (r *recorder) OnServiceAdd(*v1.Service)         { r.mu.Lock(); r.services++; r.mu.Unlock() }
func (r *recorder) OnServiceUpdate(_, _ *v1.Service) {}
func (r *recorder) OnServiceDelete(*v1.Service)      {}
func (r *recorder) OnEndpointSliceAdd(*discovery.EndpointSlice) {
	r.mu.Lock()
	r.slices++
	r.mu.Unlock()
}
func (r *recorder) OnEndpointSliceUpdate(_, _ *discovery.EndpointSlice) {}
func (r *recorder) OnEndpointSliceDelete(*discovery.EndpointSlice)      {}
func (r *recorder) OnServiceCIDRsChanged([]string)                      {}
func (r *recorder) OnServiceSynced() {
	r.mu.Lock()
	r.servicesSynced, r.servicesAtSynced = true, r.services
	r.mu.Unlock()
}
func (r *recorder) OnEndpointSlicesSynced() {
	r.mu.Lock()
	r.slicesSynced, r.slicesAtSynced = true, r.slices
	r.mu.Unlock()
}

// The service informers start listing before the proxier exists, and here have listed
// everything before it does. The proxier must still be handed every object, and be told
// "synced" only after that: a first sync that missed a Service would delete its virtual server.
// (Registering the proxier with upstream's configs only once it exists fails this test: the
// configs drop the events that came before.)
func TestHandlersAddedAfterTheInformersStartedSeeEveryObject(t *testing.T) {
	const n = 300
	var objs []runtime.Object
	for i := range n {
		name := fmt.Sprintf("svc-%d", i)
		objs = append(objs,
			&v1.Service{
				ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
				Spec: v1.ServiceSpec{ClusterIP: fmt.Sprintf("10.96.%d.%d", i/250, i%250),
					Ports: []v1.ServicePort{{Name: "p", Port: 80, Protocol: v1.ProtocolTCP}}},
			},
			&discovery.EndpointSlice{
				ObjectMeta:  metav1.ObjectMeta{Namespace: "ns", Name: name + "-abc", Labels: map[string]string{discovery.LabelServiceName: name}},
				AddressType: discovery.AddressTypeIPv4,
				Endpoints:   []discovery.Endpoint{{Addresses: []string{fmt.Sprintf("10.244.%d.%d", i/250, i%250)}}},
			})
	}
	client := fake.NewClientset(objs...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inf, err := startServiceInformers(ctx, client, 0)
	if err != nil {
		t.Fatal(err)
	}
	svcInformer := inf.services.Core().V1().Services().Informer()
	sliceInformer := inf.slices.Discovery().V1().EndpointSlices().Informer()
	if !cache.WaitForCacheSync(ctx.Done(), svcInformer.HasSynced, sliceInformer.HasSynced) {
		t.Fatal("the informers never listed")
	}
	if got := len(svcInformer.GetStore().List()); got != n {
		t.Fatalf("the Service informer holds %d objects before the proxier exists, want %d", got, n)
	}

	// The proxier exists now (startInformers).
	r := &recorder{}
	inf.held.release(r)

	if err := waitFor(ctx, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.servicesSynced && r.slicesSynced
	}); err != nil {
		t.Fatal("the configs never reported synced")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.servicesAtSynced != n || r.slicesAtSynced != n {
		t.Errorf("at synced the handler had %d Services and %d EndpointSlices, want %d of each", r.servicesAtSynced, r.slicesAtSynced, n)
	}
}

func waitFor(ctx context.Context, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}
