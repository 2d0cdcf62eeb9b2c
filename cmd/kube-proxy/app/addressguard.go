package app

import (
	"context"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	proxyipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs"
)

// clusterAddressSyncTimeout bounds how long startup waits for the Node and apiserver lists
// before the first sync; past it the guard starts with what it has and catches up.
const clusterAddressSyncTimeout = 10 * time.Second

// startClusterAddressInformers feeds the address guard every Node's addresses and the
// apiserver's endpoints, when the proxier wants them. Upstream's node manager watches only
// this node, so the Nodes come from an informer of their own, whose cache keeps nothing of a
// Node but its name and addresses. It waits (boundedly) for both lists so that the first sync
// already knows which addresses to refuse.
func (s *ProxyServer) startClusterAddressInformers(ctx context.Context) {
	h, ok := s.Proxier.(proxyipvs.ClusterAddressHandler)
	if !ok {
		return
	}
	synced := runClusterAddressInformers(ctx, s.Client, s.Config.ConfigSyncPeriod.Duration, h)
	waitCtx, cancel := context.WithTimeout(ctx, clusterAddressSyncTimeout)
	defer cancel()
	if !cache.WaitForCacheSync(waitCtx.Done(), synced...) {
		klog.FromContext(ctx).Info("Nodes and apiserver endpoints not listed yet; the address guard starts without them", "timeout", clusterAddressSyncTimeout)
	}
}

// runClusterAddressInformers starts the informers and returns their HasSynced functions.
func runClusterAddressInformers(ctx context.Context, client clientset.Interface, resync time.Duration, h proxyipvs.ClusterAddressHandler) []cache.InformerSynced {
	logger := klog.FromContext(ctx)

	nodeFactory := informers.NewSharedInformerFactoryWithOptions(client, resync, informers.WithTransform(stripNode))
	nodes := nodeFactory.Core().V1().Nodes().Informer()
	onNode := func(obj any) {
		if n, ok := obj.(*v1.Node); ok {
			h.OnNodeAddresses(n.Name, nodeAddresses(n))
		}
	}
	if _, err := nodes.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    onNode,
		UpdateFunc: func(_, obj any) { onNode(obj) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if n, ok := obj.(*v1.Node); ok {
				h.OnNodeDelete(n.Name)
			}
		},
	}); err != nil {
		logger.Error(err, "Watching Nodes for the address guard failed")
	}

	apiFactory := informers.NewSharedInformerFactoryWithOptions(client, resync,
		informers.WithNamespace(metav1.NamespaceDefault),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = labels.Set{discovery.LabelServiceName: "kubernetes"}.String()
		}))
	apiSlices := apiFactory.Discovery().V1().EndpointSlices().Informer()
	api := &apiServerEndpoints{h: h, bySlice: map[string][]netip.AddrPort{}}
	if _, err := apiSlices.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { api.set(obj, false) },
		UpdateFunc: func(_, obj any) { api.set(obj, false) },
		DeleteFunc: func(obj any) { api.set(obj, true) },
	}); err != nil {
		logger.Error(err, "Watching the apiserver's endpoints for the address guard failed")
	}

	nodeFactory.Start(ctx.Done())
	apiFactory.Start(ctx.Done())
	return []cache.InformerSynced{nodes.HasSynced, apiSlices.HasSynced}
}

// stripNode keeps a Node's name and addresses only: the guard needs nothing else, and large
// clusters have many Nodes.
func stripNode(obj any) (any, error) {
	n, ok := obj.(*v1.Node)
	if !ok {
		return obj, nil
	}
	return &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: n.Name, UID: n.UID, ResourceVersion: n.ResourceVersion},
		Status:     v1.NodeStatus{Addresses: n.Status.Addresses},
	}, nil
}

// nodeAddresses are the IP addresses among a Node's status.addresses, whatever their type.
func nodeAddresses(n *v1.Node) []netip.Addr {
	var out []netip.Addr
	for _, a := range n.Status.Addresses {
		if ip, err := netip.ParseAddr(a.Address); err == nil {
			out = append(out, ip.Unmap())
		}
	}
	return out
}

// apiServerEndpoints merges the EndpointSlices of Service default/kubernetes (one per family).
type apiServerEndpoints struct {
	mu      sync.Mutex
	h       proxyipvs.ClusterAddressHandler
	bySlice map[string][]netip.AddrPort
}

func (a *apiServerEndpoints) set(obj any, deleted bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj, deleted = t.Obj, true
	}
	s, ok := obj.(*discovery.EndpointSlice)
	if !ok {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if deleted {
		delete(a.bySlice, s.Name)
	} else {
		a.bySlice[s.Name] = sliceEndpoints(s)
	}
	var all []netip.AddrPort
	for _, eps := range a.bySlice {
		all = append(all, eps...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Compare(all[j]) < 0 })
	a.h.OnAPIServerEndpoints(slices.Compact(all))
}

// sliceEndpoints are every address:port of a slice, whatever the endpoints' conditions: an
// apiserver that is not ready is still not an address to capture.
func sliceEndpoints(s *discovery.EndpointSlice) []netip.AddrPort {
	var out []netip.AddrPort
	for _, e := range s.Endpoints {
		for _, raw := range e.Addresses {
			ip, err := netip.ParseAddr(raw)
			if err != nil {
				continue
			}
			n := len(out)
			for _, p := range s.Ports {
				if p.Port != nil && *p.Port > 0 && *p.Port <= 65535 {
					out = append(out, netip.AddrPortFrom(ip.Unmap(), uint16(*p.Port)))
				}
			}
			if len(out) == n {
				// No port: the address is still the apiserver's (port 0 matches no service port).
				out = append(out, netip.AddrPortFrom(ip.Unmap(), 0))
			}
		}
	}
	return out
}
