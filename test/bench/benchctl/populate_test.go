package main

import (
	"context"
	"testing"

	bench "github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/bench"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// apiserverLike is a fake clientset that answers a second create of a Service the way the real
// apiserver does: Invalid, because the Service's fixed ClusterIP is already allocated (to the
// Service of the same name), not AlreadyExists as the fake's tracker would.
func apiserverLike() *fake.Clientset {
	cs := fake.NewClientset()
	gvr := schema.GroupVersionResource{Version: "v1", Resource: "services"}
	cs.PrependReactor("create", "services", func(a k8stesting.Action) (bool, runtime.Object, error) {
		svc := a.(k8stesting.CreateAction).GetObject().(*corev1.Service)
		if _, err := cs.Tracker().Get(gvr, svc.Namespace, svc.Name); err != nil {
			return false, nil, nil // not there yet: the tracker creates it
		}
		return true, nil, apierrors.NewInvalid(schema.GroupKind{Kind: "Service"}, svc.Name, field.ErrorList{
			field.Invalid(field.NewPath("spec", "clusterIPs"), svc.Spec.ClusterIPs, "provided IP is already allocated")})
	})
	return cs
}

// TestCreateMissingGrows: `make bench` populates S=1000, then 5000, then 10000 against one
// apiserver; each size creates only what the previous one did not.
func TestCreateMissingGrows(t *testing.T) {
	ctx := context.Background()
	cs := apiserverLike()
	if n, err := createMissing(ctx, cs, 3, 2); err != nil || n != 6 {
		t.Fatalf("first size: created %d, err %v; want 6 objects", n, err)
	}
	// An earlier run interrupted between a Service and its slice.
	if err := cs.DiscoveryV1().EndpointSlices(bench.Namespace).Delete(ctx, bench.Slice(1, bench.Endpoints).Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if n, err := createMissing(ctx, cs, 5, 2); err != nil || n != 5 {
		t.Fatalf("second size: created %d, err %v; want 5 (Services 3 and 4, their slices, slice 1)", n, err)
	}
	svcs, _ := cs.CoreV1().Services(bench.Namespace).List(ctx, metav1.ListOptions{})
	slices, _ := cs.DiscoveryV1().EndpointSlices(bench.Namespace).List(ctx, metav1.ListOptions{})
	if len(svcs.Items) != 5 || len(slices.Items) != 5 {
		t.Errorf("apiserver holds %d Services and %d slices, want 5 and 5", len(svcs.Items), len(slices.Items))
	}
}
