package ipvs

import (
	"errors"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/component-base/metrics/testutil"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	"k8s.io/kubernetes/pkg/proxy/metrics"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/internal/fixture"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/reconcile"
)

// TestApplyFailuresAreAttributedByStage: a failed apply names its stage, and upstream's
// sync_proxy_rules_iptables_restore_failures_total counts only a failed iptables-restore. The
// failures are injected at the first sync, when no rules were restored yet: a failure of any
// other stage then is not an iptables failure either (it was counted as one when the proxier
// guessed the cause from the cache).
func TestApplyFailuresAreAttributedByStage(t *testing.T) {
	metrics.RegisterMetrics(kubeproxyconfig.ProxyModeIPVS)
	boom := errors.New("injected")
	for _, tc := range []struct {
		name   string
		inject func(*env)
		stage  reconcile.Stage
		want   float64 // iptables-restore failures counted
	}{
		{"the IPVS batch fails", func(e *env) { e.ipvs.InjectError("Add", boom) }, reconcile.StageIPVS, 0},
		{"ipset restore fails", func(e *env) { e.ipset.InjectError("Apply", boom) }, reconcile.StageIPSet, 0},
		{"kube-ipvs0 cannot be created", func(e *env) { e.nd.InjectError("EnsureDummy", boom) }, reconcile.StageAddress, 0},
		{"binding fails", func(e *env) { e.nd.InjectError("AddAddresses", boom) }, reconcile.StageAddress, 0},
		{"iptables-restore fails", func(e *env) { e.ipt.restoreErr = boom }, reconcile.StageIPTables, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			web := fixture.Service("web", "10.96.0.10", fixture.NodePort(30080))
			e.deliver(web)
			e.deliver(fixture.Slice(web, v1.IPv4Protocol, fixture.Endpoint{IP: "10.244.1.5", Node: "node-b"}))
			e.p.servicesSynced, e.p.endpointSlicesSynced = true, true
			e.p.initialized.Store(true)

			tc.inject(e)
			counter := metrics.IPTablesRestoreFailuresTotal.WithLabelValues(string(v1.IPv4Protocol))
			before, _ := testutil.GetCounterMetricValue(counter)
			err := e.p.syncProxyRules()
			var failed *reconcile.ApplyError
			if !errors.As(err, &failed) || failed.Stage != tc.stage || !errors.Is(err, boom) {
				t.Fatalf("sync returned %v, want an reconcile.ApplyError of stage %s wrapping the injected error", err, tc.stage)
			}
			after, _ := testutil.GetCounterMetricValue(counter)
			if after-before != tc.want {
				t.Errorf("iptables restore failures counted %v, want %v", after-before, tc.want)
			}
			// The retry reads the kernel again and succeeds.
			e.sync()
			if !e.bound()["10.96.0.10"] {
				t.Errorf("the retry did not program the Service")
			}
		})
	}
}
