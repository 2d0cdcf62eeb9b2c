package app

import (
	"context"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	v1informers "k8s.io/client-go/informers/core/v1"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/proxy/config"
)

// startTopology gives the proxier this node's topology labels now and at every change.
//
// Upstream's NodeTopologyConfig adds its informer handler when it is built and takes the
// proxier afterwards (RegisterEventHandler). The node informer is already running (the node
// manager waited on it), so the replay of the Node can reach the handler before the proxier is
// registered: the labels are recorded, nobody is told, and later events with the same labels
// are skipped. The proxier then ignores zone hints until the zone changes (seen in the parity
// test, on upstream v1.37.2 and on this binary before this relay). So after registering, the
// relay reads the Node from the informer's store and hands its labels over itself.
func startTopology(ctx context.Context, nodes v1informers.NodeInformer, nodeName string, resync time.Duration, h config.NodeTopologyHandler) {
	r := &topologyRelay{h: h}
	topology := config.NewNodeTopologyConfig(ctx, nodes, resync)
	topology.RegisterEventHandler(r)
	node, err := nodes.Lister().Get(nodeName)
	if err != nil {
		klog.FromContext(ctx).V(2).Info("Node not in the informer's store yet; its topology labels come with its first event", "node", nodeName, "err", err)
		return
	}
	r.initial(node)
}

// topologyRelay passes topology changes to the proxier, and once the labels read from the
// store. The mutex orders the two: the store is updated before handlers are told, so a read
// under the lock is never older than a change delivered before it, and a change delivered
// after it comes after it.
type topologyRelay struct {
	mu sync.Mutex
	h  config.NodeTopologyHandler
}

func (r *topologyRelay) OnTopologyChange(labels map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.h.OnTopologyChange(labels)
}

func (r *topologyRelay) initial(node *v1.Node) {
	r.mu.Lock()
	defer r.mu.Unlock()
	labels := map[string]string{}
	if zone, ok := node.Labels[v1.LabelTopologyZone]; ok {
		labels[v1.LabelTopologyZone] = zone
	}
	r.h.OnTopologyChange(labels)
}
