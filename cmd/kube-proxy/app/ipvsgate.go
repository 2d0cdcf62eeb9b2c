package app

import (
	"k8s.io/component-base/featuregate"
	"k8s.io/klog/v2"
)

// IPVSGate is upstream's KubeProxyIPVS feature gate (KEP-5495): deprecated in 1.37, off by
// default from 1.40 (upstream then refuses `mode: ipvs`), removed with the IPVS code in 1.43.
// Operators set it in the kube-proxy config for upstream's tools (kubeadm writes what it is
// given). This kube-proxy serves `mode: ipvs` whatever it says, so the gate must never make it
// refuse a config: not while upstream registers it, not when upstream locks it to a default,
// not after upstream removes it. The name is ours, not k8s.io/kubernetes/pkg/features', so this
// code still compiles once upstream deletes that constant.
const IPVSGate = "KubeProxyIPVS"

// withoutIPVSGate returns gates less KubeProxyIPVS, and its value when it was set.
func withoutIPVSGate(gates map[string]bool) (rest map[string]bool, ipvs *bool) {
	rest = make(map[string]bool, len(gates))
	for k, v := range gates {
		if k == IPVSGate {
			v := v
			ipvs = &v
			continue
		}
		rest[k] = v
	}
	return rest, ipvs
}

// applyFeatureGates sets the configured gates on fg as upstream does (an unknown or locked
// gate is an error), except KubeProxyIPVS: it is applied when fg accepts it (so upstream code
// reading it sees the operator's value) and otherwise ignored with a log line.
func applyFeatureGates(fg featuregate.MutableFeatureGate, gates map[string]bool) error {
	rest, ipvs := withoutIPVSGate(gates)
	if err := fg.SetFromMap(rest); err != nil {
		return err
	}
	if ipvs == nil {
		return nil
	}
	if err := fg.SetFromMap(map[string]bool{IPVSGate: *ipvs}); err != nil {
		klog.InfoS("Feature gate KubeProxyIPVS ignored: this kube-proxy serves mode ipvs whatever it says", "value", *ipvs, "reason", err.Error())
	}
	return nil
}
