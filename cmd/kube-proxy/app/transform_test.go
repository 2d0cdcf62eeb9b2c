package app

import (
	"reflect"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/kubernetes/pkg/proxy"
	"k8s.io/utils/ptr"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/desired"
)

// fullSlice is an EndpointSlice with every field set, as the endpoint slice controller and
// server-side apply leave it.
func fullSlice() *discovery.EndpointSlice {
	ep := func(ip, node string, ready bool) discovery.Endpoint {
		return discovery.Endpoint{
			Addresses:          []string{ip},
			Conditions:         discovery.EndpointConditions{Ready: ptr.To(ready), Serving: ptr.To(ready), Terminating: ptr.To(!ready)},
			Hostname:           ptr.To("web-0"),
			TargetRef:          &v1.ObjectReference{Kind: "Pod", Namespace: "ns", Name: "web-" + ip, UID: "0b8f7e6c-2f3a-4c1e-9d5b-6a7e8f9a0b1c"},
			NodeName:           ptr.To(node),
			Zone:               ptr.To("zone-a"),
			Hints:              &discovery.EndpointHints{ForZones: []discovery.ForZone{{Name: "zone-a"}}},
			DeprecatedTopology: map[string]string{"kubernetes.io/hostname": node},
		}
	}
	return &discovery.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-abcde", Namespace: "ns",
			Labels: map[string]string{discovery.LabelServiceName: "web", discovery.LabelManagedBy: "endpointslice-controller.k8s.io"},
			Annotations: map[string]string{
				v1.EndpointsLastChangeTriggerTime: "2026-12-01T10:00:00Z",
				"example.com/other":               "x",
			},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: "web", UID: "1"}},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager"}},
		},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(v1.ProtocolTCP)}},
		Endpoints:   []discovery.Endpoint{ep("10.244.1.5", "node-a", true), ep("10.244.2.6", "node-b", false)},
	}
}

func TestDropUnreadEndpointSlice(t *testing.T) {
	got, err := dropUnread(fullSlice())
	if err != nil {
		t.Fatal(err)
	}
	want := fullSlice()
	want.ManagedFields, want.OwnerReferences = nil, nil
	want.Annotations = map[string]string{v1.EndpointsLastChangeTriggerTime: "2026-12-01T10:00:00Z"}
	for i := range want.Endpoints {
		want.Endpoints[i].TargetRef, want.Endpoints[i].Hostname, want.Endpoints[i].DeprecatedTopology = nil, nil, nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("dropUnread:\n got %+v\nwant %+v", got, want)
	}
}

// TestDropUnreadKeepsWhatTheTrackerSees: upstream's endpoints change tracker builds the same
// endpoints from a transformed slice as from the original.
func TestDropUnreadKeepsWhatTheTrackerSees(t *testing.T) {
	endpoints := func(s *discovery.EndpointSlice) proxy.EndpointsMap {
		ect := proxy.NewEndpointsChangeTracker(v1.IPv4Protocol, "node-a", nil, nil)
		ect.EndpointSliceUpdate(s, false)
		m := proxy.EndpointsMap{}
		m.Update(ect)
		return m
	}
	stripped, _ := dropUnread(fullSlice())
	want, got := endpoints(fullSlice()), endpoints(stripped.(*discovery.EndpointSlice))
	if len(want) != 1 || !reflect.DeepEqual(got, want) {
		t.Errorf("endpoints from the transformed slice %v, from the original %v", got, want)
	}
}

func TestDropUnreadService(t *testing.T) {
	svc := func() *v1.Service {
		return &v1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns",
				Annotations: map[string]string{
					lastAppliedAnnotation:           `{"apiVersion":"v1","kind":"Service"}`,
					desired.AnnotationBindLBIngress: "false",
				},
				ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
			},
			Spec: v1.ServiceSpec{ClusterIP: "10.96.0.10", Selector: map[string]string{"app": "web"}},
		}
	}
	got, _ := dropUnread(svc())
	want := svc()
	want.ManagedFields = nil
	delete(want.Annotations, lastAppliedAnnotation)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("dropUnread:\n got %+v\nwant %+v", got, want)
	}

	tomb := cache.DeletedFinalStateUnknown{Key: "ns/web", Obj: svc()}
	if got, err := dropUnread(tomb); err != nil || !reflect.DeepEqual(got, tomb) {
		t.Errorf("a tombstone changed: %+v, %v", got, err)
	}
}
