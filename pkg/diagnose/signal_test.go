package diagnose

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/component-base/metrics/testutil"
)

func TestRecordExportsFindingsAndDropsGoneOnes(t *testing.T) {
	RegisterMetrics()
	Record(Report{Findings: []Finding{
		{ID: "lb-ingress-martian", Severity: Warning},
		{ID: "lb-ingress-martian", Severity: Warning},
		{ID: "service-address-collision", Severity: Error},
	}}, time.Unix(100, 0))
	want := `
# HELP kubeproxy_ipvs_diagnose_findings [ALPHA] Findings of the last kernel-only diagnose run, by check id and severity (docs/diagnose.md); a series disappears when its condition is gone.
# TYPE kubeproxy_ipvs_diagnose_findings gauge
kubeproxy_ipvs_diagnose_findings{check="lb-ingress-martian",severity="warning"} 2
kubeproxy_ipvs_diagnose_findings{check="service-address-collision",severity="error"} 1
`
	if err := testutil.CollectAndCompare(findingsGauge, strings.NewReader(want), "kubeproxy_ipvs_diagnose_findings"); err != nil {
		t.Fatal(err)
	}
	// The condition is gone: its series must go too, or an alert would never resolve.
	Record(Report{}, time.Unix(200, 0))
	if err := testutil.CollectAndCompare(findingsGauge, strings.NewReader(""), "kubeproxy_ipvs_diagnose_findings"); err != nil {
		t.Fatalf("series left after a clean run: %v", err)
	}
	if v, _ := testutil.GetGaugeMetricValue(lastRunGauge); v != 200 {
		t.Fatalf("last run %v, want 200", v)
	}
}

func TestRunSignalRecordsEachRun(t *testing.T) {
	RegisterMetrics()
	lastRunGauge.Set(0)
	findingsGauge.Reset()
	s := node()
	// An address on kube-ipvs0 with no virtual server: found from the kernel alone.
	bind(s, "203.0.113.77")
	want := Run(Collect(context.Background(), fakeKernel{s: s}, nil, "node1", SignalNoCluster))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { RunSignal(ctx, fakeKernel{s: s}, "node1", 0, time.Hour); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for mustGauge(t) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no run recorded")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if len(want.Findings) == 0 {
		t.Fatal("the fixture gives no finding: the test would prove nothing")
	}
	for _, f := range want.Findings {
		v, err := testutil.GetGaugeMetricValue(findingsGauge.WithLabelValues(f.ID, f.Severity.String()))
		if err != nil || v == 0 {
			t.Errorf("finding %s (%s) not exported: %v %v", f.ID, f.Severity, v, err)
		}
	}
}

func mustGauge(t *testing.T) float64 {
	v, err := testutil.GetGaugeMetricValue(lastRunGauge)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
