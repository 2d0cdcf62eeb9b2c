package ipvs

import (
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// Fork metrics live under their own names; upstream's keep theirs unchanged.
var (
	kernelOperations = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      "kubeproxy_ipvs",
		Name:           "kernel_operations_total",
		Help:           "Kernel round trips made by the IPVS proxier's syncs (netlink requests and process launches), by kind: read or write.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"ip_family", "kind"})

	ipsetEntriesRefused = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Subsystem:      "kubeproxy_ipvs",
		Name:           "ipset_entries_refused",
		Help:           "ipset entries the kernel refused in the last ipset write (a full set, a value it rejects); the other entries were written.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"ip_family"})

	registerOnce sync.Once
)

// RegisterMetrics registers the fork's IPVS metrics (upstream's are registered by the command).
func RegisterMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(kernelOperations, lbIngressUnbound, refusedAddresses, ipsetEntriesRefused)
	})
}

func recordKernelOps(family v1.IPFamily, reads, writes int) {
	kernelOperations.WithLabelValues(string(family), "read").Add(float64(reads))
	kernelOperations.WithLabelValues(string(family), "write").Add(float64(writes))
}
