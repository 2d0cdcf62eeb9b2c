package app

import (
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
)

// lastAppliedAnnotation is kubectl's copy of the whole object as last applied: often the
// largest part of a Service, and never read by a proxy.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// dropUnread is the informers' transform: it drops, before an object is cached, what the
// proxy never reads, because the informers hold every Service and EndpointSlice of the cluster,
// the larger part of kube-proxy's heap on a large cluster.
//
// Dropped: managed fields (every object, as upstream does); an EndpointSlice's owner
// references, annotations other than the last-change trigger time (read for the network
// programming latency metric), and each endpoint's targetRef, hostname and deprecated
// topology; a Service's last-applied-configuration annotation (the fork reads the Service's
// other annotations). Kept: everything upstream's trackers and the fork read (the slice's
// labels, address type, ports; each endpoint's addresses, conditions, node, zone and hints).
//
// The objects are freshly decoded and not yet shared, so they are changed in place. Anything
// else (a deletion's tombstone included) passes unchanged.
func dropUnread(obj any) (any, error) {
	if a, err := meta.Accessor(obj); err == nil {
		a.SetManagedFields(nil)
	}
	switch o := obj.(type) {
	case *discovery.EndpointSlice:
		o.OwnerReferences = nil
		if t, ok := o.Annotations[v1.EndpointsLastChangeTriggerTime]; ok {
			o.Annotations = map[string]string{v1.EndpointsLastChangeTriggerTime: t}
		} else {
			o.Annotations = nil
		}
		for i := range o.Endpoints {
			e := &o.Endpoints[i]
			e.TargetRef, e.Hostname, e.DeprecatedTopology = nil, nil, nil
		}
	case *v1.Service:
		delete(o.Annotations, lastAppliedAnnotation)
	}
	return obj, nil
}
