// Package forkconfig holds kube-proxy-ipvs's own settings: the ones upstream kube-proxy does
// not have. Each is a command-line flag and a field of the --config file, written beside the
// upstream fields it belongs with:
//
//	ipvs:
//	  bindLoadBalancerIngress: true   # --ipvs-bind-lb-ingress
//	  protectedCIDRs: []              # --ipvs-protected-cidrs
//	  externalIPCIDRs: []             # --ipvs-external-ip-cidrs
//	iptables:
//	  masqueradeRandomFully: auto     # --masquerade-random-fully
//
// Upstream kube-proxy's strict decoder rejects these fields and its lenient fallback ignores
// them, so a file that uses them still loads in upstream kube-proxy (a swap back works). This
// fork reads them strictly (FromFile): a setting that guards addresses must not quietly fall
// back to its default.
package forkconfig

import (
	"fmt"
	"net/netip"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// RandomFully says when MASQUERADE rules get --random-fully.
type RandomFully string

const (
	// RandomFullyAuto keeps --random-fully except for VXLAN-encapsulated traffic.
	RandomFullyAuto RandomFully = "auto"
	// RandomFullyAlways is upstream's rule set exactly.
	RandomFullyAlways RandomFully = "always"
	// RandomFullyNever writes no --random-fully at all.
	RandomFullyNever RandomFully = "never"
)

// Config is the fork's settings, resolved from defaults, the --config file and flags.
type Config struct {
	// BindLoadBalancerIngress is the default for binding VIP-mode LoadBalancer ingress IPs to
	// kube-ipvs0; a Service's kube-proxy-ipvs.io/bind-lb-ingress annotation overrides it.
	BindLoadBalancerIngress bool
	// ProtectedCIDRs are never bound or captured as an externalIP or LoadBalancer IP.
	ProtectedCIDRs []string
	// ExternalIPCIDRs, when set, is the allow-list of externalIPs.
	ExternalIPCIDRs []string
	// MasqueradeRandomFully is auto, always or never.
	MasqueradeRandomFully RandomFully
}

// Default is upstream's behaviour for everything except random-fully, whose default (auto)
// differs from upstream only for VXLAN-encapsulated traffic.
func Default() Config {
	return Config{BindLoadBalancerIngress: true, MasqueradeRandomFully: RandomFullyAuto}
}

// Validate reports invalid settings with the field paths of the config file.
func (c *Config) Validate() field.ErrorList {
	var errs field.ErrorList
	root := field.NewPath("KubeProxyConfiguration")
	switch c.MasqueradeRandomFully {
	case RandomFullyAuto, RandomFullyAlways, RandomFullyNever:
	default:
		errs = append(errs, field.NotSupported(root.Child("iptables", "masqueradeRandomFully"), string(c.MasqueradeRandomFully),
			[]string{string(RandomFullyAuto), string(RandomFullyAlways), string(RandomFullyNever)}))
	}
	errs = append(errs, validateCIDRs(c.ProtectedCIDRs, root.Child("ipvs", "protectedCIDRs"))...)
	errs = append(errs, validateCIDRs(c.ExternalIPCIDRs, root.Child("ipvs", "externalIPCIDRs"))...)
	return errs
}

func validateCIDRs(cidrs []string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, c := range cidrs {
		if _, err := netip.ParsePrefix(c); err != nil {
			errs = append(errs, field.Invalid(path.Index(i), c, fmt.Sprintf("must be a CIDR: %v", err)))
		}
	}
	return errs
}

// Prefixes parses CIDRs that Validate accepted.
func Prefixes(cidrs []string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(cidrs))
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}
