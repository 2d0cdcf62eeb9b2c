package app

import (
	"context"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
)

type recordedTopology struct {
	mu   sync.Mutex
	seen []map[string]string
}

func (r *recordedTopology) OnTopologyChange(labels map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, labels)
}

func (r *recordedTopology) last() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.seen) == 0 {
		return nil
	}
	return r.seen[len(r.seen)-1]
}

// TestTopologyLabelsReachTheProxierAtStart: the node informer has synced before the
// proxier is registered (as the node manager leaves it); the proxier must still have the
// zone when startTopology returns, and follow a later change.
func TestTopologyLabelsReachTheProxierAtStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node1", Labels: map[string]string{v1.LabelTopologyZone: "zone-a", "other": "x"}}}
	client := fake.NewSimpleClientset(node)
	factory := informers.NewSharedInformerFactory(client, 0)
	nodes := factory.Core().V1().Nodes()
	nodes.Informer()
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), nodes.Informer().HasSynced) {
		t.Fatal("node informer did not sync")
	}

	rec := &recordedTopology{}
	startTopology(ctx, nodes, "node1", 0, rec)
	if got := rec.last(); got[v1.LabelTopologyZone] != "zone-a" || len(got) != 1 {
		t.Fatalf("labels when startTopology returned: %v, want only the zone, zone-a", got)
	}

	node = node.DeepCopy()
	node.Labels[v1.LabelTopologyZone] = "zone-b"
	if _, err := client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return rec.last()[v1.LabelTopologyZone] == "zone-b", nil
	})
	if err != nil {
		t.Fatalf("the zone change did not reach the proxier: last labels %v", rec.last())
	}
}
