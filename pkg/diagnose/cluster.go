package diagnose

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// APIReader is the ClusterReader over a clientset: one list of each kind, all namespaces.
type APIReader struct{ Client kubernetes.Interface }

func (a APIReader) Services(ctx context.Context) ([]corev1.Service, error) {
	l, err := a.Client.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

func (a APIReader) EndpointSlices(ctx context.Context) ([]discoveryv1.EndpointSlice, error) {
	l, err := a.Client.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

func (a APIReader) Nodes(ctx context.Context) ([]corev1.Node, error) {
	l, err := a.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}
