package app

import (
	"k8s.io/apimachinery/pkg/util/validation/field"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	"k8s.io/kubernetes/pkg/proxy/apis/config/validation"
)

// validateConfig runs upstream's validation with one deliberate difference: `mode: ipvs` is
// valid whatever the KubeProxyIPVS feature gate says, since keeping IPVS alive after upstream
// gates and removes it is this project's purpose, and the KubeProxyIPVS gate itself is never an
// error (ipvsgate.go: upstream may lock it, then remove it). Every other error is upstream's,
// verbatim.
func validateConfig(cfg *kubeproxyconfig.KubeProxyConfiguration) field.ErrorList {
	if _, set := cfg.FeatureGates[IPVSGate]; set {
		c := *cfg
		c.FeatureGates, _ = withoutIPVSGate(cfg.FeatureGates)
		cfg = &c
	}
	errs := validation.Validate(cfg)
	if cfg.Mode != kubeproxyconfig.ProxyModeIPVS {
		return errs
	}
	modePath := field.NewPath("KubeProxyConfiguration", "Mode", "ProxyMode").String()
	kept := errs[:0]
	for _, e := range errs {
		if e.Field == modePath && e.BadValue == string(kubeproxyconfig.ProxyModeIPVS) {
			continue
		}
		kept = append(kept, e)
	}
	return kept
}

// Validate validates the completed configuration.
func (o *Options) Validate() error {
	errs := validateConfig(o.config)
	errs = append(errs, o.forkConfig.Validate()...)
	if len(errs) > 0 {
		return errs.ToAggregate()
	}
	return nil
}
