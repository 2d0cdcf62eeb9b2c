package ipvs

import (
	"fmt"
	"runtime"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/desired"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/internal/fixture"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/reconcile"
)

// benchObjects is n ClusterIP services, half of them with a NodePort, each with 10 endpoints
// on other nodes (the shape of the lab bench).
func benchObjects(n int) []any {
	objs := make([]any, 0, 2*n)
	for i := 0; i < n; i++ {
		var opts []func(*v1.Service)
		if i%2 == 0 {
			opts = append(opts, fixture.NodePort(int32(30000+i%2700)))
		}
		svc := fixture.Service(fmt.Sprintf("s%d", i), fmt.Sprintf("10.96.%d.%d", i/250, i%250+1), opts...)
		eps := make([]fixture.Endpoint, 10)
		for j := range eps {
			eps[j] = fixture.Endpoint{IP: fmt.Sprintf("10.%d.%d.%d", 100+j, i/250, i%250+1), Node: "node-b"}
		}
		objs = append(objs, svc, fixture.Slice(svc, v1.IPv4Protocol, eps...))
	}
	return objs
}

// BenchmarkDesiredState computes the desired state of every service port: the pure part of a
// full sync.
func BenchmarkDesiredState(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			e := newEnv(&testing.T{})
			e.start(benchObjects(n)...)
			ctx := e.p.nodeCtx
			var ins []desired.ServicePortInput
			for name, sp := range e.p.svcPortMap {
				ins = append(ins, desired.ServicePortInput{Name: name, Port: sp, Endpoints: e.p.endpointsMap[name]})
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for _, in := range ins {
					_ = desired.DesiredServicePort(&ctx, in)
				}
			}
		})
	}
}

// BenchmarkColdSync is the first sync of a fresh proxier into an empty (fake) kernel.
func BenchmarkColdSync(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			objs := benchObjects(n)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				e := newEnv(&testing.T{})
				e.start(objs...)
			}
		})
	}
}

// BenchmarkEndpointChangeSync is a sync after one endpoint of one service changed.
func BenchmarkEndpointChangeSync(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			e := newEnv(&testing.T{})
			objs := benchObjects(n)
			e.start(objs...)
			base := objs[1].(*discovery.EndpointSlice)
			alt := base.DeepCopy()
			alt.Endpoints = alt.Endpoints[1:]
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i%2 == 0 {
					e.p.OnEndpointSliceUpdate(nil, alt)
				} else {
					e.p.OnEndpointSliceUpdate(nil, base)
				}
				if err := e.p.syncProxyRules(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPeriodicVerification is the syncPeriod sync of a quiet node: it reads the kernel
// and writes nothing.
func BenchmarkPeriodicVerification(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			e := newEnv(&testing.T{})
			e.start(benchObjects(n)...)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				e.p.lastVerify = e.p.lastVerify.AddDate(-1, 0, 0)
				if err := e.p.syncProxyRules(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRetainedHeap is the heap a proxier keeps after its cold sync and a round of
// periodic verifications: the change trackers, the desired state and the cache of the kernel
// (plus the fake kernel's own copy of the objects; the Service and EndpointSlice objects are
// not counted). Its metric is retained-MiB; the time per op is not of interest.
func BenchmarkRetainedHeap(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			objs := benchObjects(n)
			var retained float64
			for i := 0; i < b.N; i++ {
				before := liveHeap()
				e := newEnv(&testing.T{})
				e.start(objs...)
				for range reconcile.RealServerWindows + 1 {
					e.verifySync()
				}
				retained = float64(liveHeap()-before) / (1 << 20)
				runtime.KeepAlive(e)
			}
			b.ReportMetric(retained, "retained-MiB")
		})
	}
}

// liveHeap is the bytes of live heap objects after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
