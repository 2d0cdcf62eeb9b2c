package app

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/version"
	"k8s.io/component-base/featuregate"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
)

// gateRegistry builds a feature gate registry as upstream kube-proxy at some release has it:
// ipvs is its KubeProxyIPVS spec, nil for a release that no longer has the gate (1.43+).
func gateRegistry(t *testing.T, ipvs *featuregate.FeatureSpec) featuregate.MutableFeatureGate {
	t.Helper()
	fg := featuregate.NewFeatureGate()
	specs := map[featuregate.Feature]featuregate.FeatureSpec{"OtherGate": {Default: false, PreRelease: featuregate.Alpha}}
	if ipvs != nil {
		specs[IPVSGate] = *ipvs
	}
	if err := fg.Add(specs); err != nil {
		t.Fatal(err)
	}
	return fg
}

func TestApplyFeatureGatesIPVSGate(t *testing.T) {
	tests := []struct {
		name     string
		ipvs     *featuregate.FeatureSpec
		value    bool
		wantIPVS bool // Enabled(KubeProxyIPVS) afterwards, when the gate exists
	}{
		{"1.37 deprecated, on by default: false applied", &featuregate.FeatureSpec{Default: true, PreRelease: featuregate.Deprecated}, false, false},
		{"1.37 deprecated, on by default: true applied", &featuregate.FeatureSpec{Default: true, PreRelease: featuregate.Deprecated}, true, true},
		{"1.40 off by default: true applied", &featuregate.FeatureSpec{Default: false, PreRelease: featuregate.Deprecated}, true, true},
		{"locked off: true ignored", &featuregate.FeatureSpec{Default: false, PreRelease: featuregate.Deprecated, LockToDefault: true}, true, false},
		{"locked off: false accepted", &featuregate.FeatureSpec{Default: false, PreRelease: featuregate.Deprecated, LockToDefault: true}, false, false},
		{"removed (1.43): true ignored", nil, true, false},
		{"removed (1.43): false ignored", nil, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fg := gateRegistry(t, tc.ipvs)
			err := applyFeatureGates(fg, map[string]bool{IPVSGate: tc.value, "OtherGate": true})
			if err != nil {
				t.Fatalf("applyFeatureGates refused the config: %v", err)
			}
			if !fg.Enabled("OtherGate") {
				t.Error("the other gate was not applied")
			}
			if tc.ipvs != nil && fg.Enabled(IPVSGate) != tc.wantIPVS {
				t.Errorf("KubeProxyIPVS enabled = %v, want %v", fg.Enabled(IPVSGate), tc.wantIPVS)
			}
		})
	}

	// Without the special case the removed and locked gates would be refused, as upstream does:
	// the table above would then test nothing.
	if err := gateRegistry(t, nil).SetFromMap(map[string]bool{IPVSGate: true}); err == nil {
		t.Error("a registry without the gate accepted it: the 'removed' rows prove nothing")
	}
	locked := gateRegistry(t, &featuregate.FeatureSpec{Default: false, LockToDefault: true, PreRelease: featuregate.Deprecated})
	if err := locked.SetFromMap(map[string]bool{IPVSGate: true}); err == nil {
		t.Error("a gate locked off accepted true: the 'locked' rows prove nothing")
	}

	// Every other gate keeps upstream's rules.
	if err := applyFeatureGates(gateRegistry(t, nil), map[string]bool{IPVSGate: true, "NoSuchGate": true}); err == nil || !strings.Contains(err.Error(), "NoSuchGate") {
		t.Errorf("an unknown other gate: err %v, want one naming NoSuchGate", err)
	}
}

// A versioned registry (the kind utilfeature.DefaultMutableFeatureGate is) behaves the same.
func TestApplyFeatureGatesVersionedRegistry(t *testing.T) {
	fg := featuregate.NewVersionedFeatureGate(version.MustParse("1.43"))
	if err := fg.AddVersioned(map[featuregate.Feature]featuregate.VersionedSpecs{
		"OtherGate": {{Version: version.MustParse("1.30"), Default: false, PreRelease: featuregate.Alpha}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := applyFeatureGates(fg, map[string]bool{IPVSGate: false, "OtherGate": true}); err != nil {
		t.Fatalf("a 1.43-style registry (no KubeProxyIPVS) refused the config: %v", err)
	}
}

func TestValidateConfigIgnoresIPVSGate(t *testing.T) {
	for _, v := range []bool{true, false} {
		cfg := validBaseConfig()
		cfg.FeatureGates = map[string]bool{IPVSGate: v}
		if errs := validateConfig(cfg); len(errs) != 0 {
			t.Errorf("KubeProxyIPVS=%v: %v", v, errs.ToAggregate())
		}
		if _, still := cfg.FeatureGates[IPVSGate]; !still {
			t.Error("validateConfig changed the caller's featureGates")
		}
	}
	cfg := validBaseConfig()
	cfg.FeatureGates = map[string]bool{IPVSGate: true, "NoSuchGate": true}
	errs := validateConfig(cfg)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "NoSuchGate") {
		t.Errorf("an unknown other gate: %v, want one error naming NoSuchGate", errs.ToAggregate())
	}
}

// validBaseConfig is upstream's defaults in ipvs mode, as Complete leaves them.
func validBaseConfig() *kubeproxyconfig.KubeProxyConfiguration {
	o := NewOptions()
	cfg := o.config.DeepCopy()
	cfg.Mode = kubeproxyconfig.ProxyModeIPVS
	applyPlatformDefaults(cfg)
	return cfg
}
