package diagnose

import (
	"context"
	"strings"
	"sync"
	"time"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
)

// The running signal: kube-proxy runs the kernel checks now and then and exports what they find,
// so an alert can fire without anyone running `kube-proxy diagnose`. Only the kernel is read:
// listing every Service, EndpointSlice and Node from the apiserver on each node every few
// minutes would cost the control plane more than the signal is worth, and the cluster-wide
// address collisions are already refused and counted by the proxier itself
// (kubeproxy_ipvs_refused_addresses).
var (
	findingsGauge = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Subsystem:      "kubeproxy_ipvs",
		Name:           "diagnose_findings",
		Help:           "Findings of the last kernel-only diagnose run, by check id and severity (docs/diagnose.md); a series disappears when its condition is gone.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"check", "severity"})
	lastRunGauge = metrics.NewGauge(&metrics.GaugeOpts{
		Subsystem:      "kubeproxy_ipvs",
		Name:           "diagnose_last_run_timestamp_seconds",
		Help:           "When the running diagnose signal last completed, in seconds since the epoch.",
		StabilityLevel: metrics.ALPHA,
	})
	registerOnce sync.Once
)

// SignalNoCluster is why the running signal has no cluster view (a check that needs one says so).
const SignalNoCluster = "the running signal reads the kernel only; run kube-proxy diagnose for the cluster-wide checks"

// RegisterMetrics registers the running signal's metrics.
func RegisterMetrics() {
	registerOnce.Do(func() { legacyregistry.MustRegister(findingsGauge, lastRunGauge) })
}

// Record replaces the exported findings with those of r: one series per check id and severity,
// valued by how many findings it holds.
func Record(r Report, now time.Time) {
	counts := map[[2]string]int{}
	for _, f := range r.Findings {
		counts[[2]string{f.ID, f.Severity.String()}]++
	}
	findingsGauge.Reset()
	for k, n := range counts {
		findingsGauge.WithLabelValues(k[0], k[1]).Set(float64(n))
	}
	lastRunGauge.Set(float64(now.Unix()))
}

// RunSignal runs the kernel checks after delay and then every period until ctx ends, and records
// each report. One run reads what `kube-proxy diagnose` without a kubeconfig reads.
func RunSignal(ctx context.Context, k KernelReader, nodeName string, delay, period time.Duration) {
	logger := klog.FromContext(ctx)
	t := time.NewTimer(delay)
	defer t.Stop()
	var reported string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r := Run(Collect(ctx, k, nil, nodeName, SignalNoCluster))
		Record(r, time.Now())
		// Logged when the set of warnings and errors changes, not at every run.
		var ids []string
		for _, f := range r.Findings {
			if f.Severity > Info {
				ids = append(ids, f.ID)
			}
		}
		if now := strings.Join(ids, ","); now != reported {
			if len(ids) > 0 {
				worst, _ := r.Worst()
				logger.Info("Diagnose found a known IPVS failure mode on this node; run kube-proxy diagnose for the evidence", "checks", ids, "worst", worst)
			} else {
				logger.Info("Diagnose finds no warning or error on this node any more")
			}
			reported = now
		}
		t.Reset(period)
	}
}
