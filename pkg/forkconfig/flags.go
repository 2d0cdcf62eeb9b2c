package forkconfig

import (
	"github.com/spf13/pflag"
	"k8s.io/klog/v2"
)

// Flag names of the fork's settings.
const (
	FlagBindLBIngress         = "ipvs-bind-lb-ingress"
	FlagProtectedCIDRs        = "ipvs-protected-cidrs"
	FlagExternalIPCIDRs       = "ipvs-external-ip-cidrs"
	FlagMasqueradeRandomFully = "masquerade-random-fully"
)

// FlagNames lists every flag the fork adds to upstream's set.
var FlagNames = []string{FlagBindLBIngress, FlagProtectedCIDRs, FlagExternalIPCIDRs, FlagMasqueradeRandomFully}

// Flags holds the fork's flag values until they are folded into a Config.
type Flags struct {
	cfg         Config
	randomFully string
	// SettingsFile is --fork-config: a file of the fork's settings alone (settings.go).
	SettingsFile string
}

// AddFlags registers the fork's flags with their defaults.
func (f *Flags) AddFlags(fs *pflag.FlagSet) {
	f.cfg = Default()
	fs.BoolVar(&f.cfg.BindLoadBalancerIngress, FlagBindLBIngress, f.cfg.BindLoadBalancerIngress,
		"[kube-proxy-ipvs] Bind VIP-mode LoadBalancer ingress IPs to kube-ipvs0 (upstream's behaviour), so in-cluster traffic to them stays on the node. "+
			"Set false when the load balancer sends health checks or traffic with its VIP as source. A Service's kube-proxy-ipvs.io/bind-lb-ingress annotation overrides this.")
	fs.StringSliceVar(&f.cfg.ProtectedCIDRs, FlagProtectedCIDRs, nil,
		"[kube-proxy-ipvs] CIDRs (e.g. keepalived VIPs, gateways) that are never bound or captured as an externalIP or LoadBalancer IP, in addition to node and apiserver addresses.")
	fs.StringSliceVar(&f.cfg.ExternalIPCIDRs, FlagExternalIPCIDRs, nil,
		"[kube-proxy-ipvs] If set, the only CIDRs externalIPs may come from; other externalIPs are refused.")
	fs.StringVar(&f.SettingsFile, FlagSettingsFile, "",
		"[kube-proxy-ipvs] A YAML file holding only kube-proxy-ipvs's settings, in their --config sections (ipvs.protectedCIDRs, iptables.masqueradeRandomFully, ...). "+
			"Read after --config, which kubeadm regenerates without them; a setting in both files must have the same value. Flags win over both.")
	fs.StringVar(&f.randomFully, FlagMasqueradeRandomFully, string(f.cfg.MasqueradeRandomFully),
		"[kube-proxy-ipvs] When MASQUERADE rules use --random-fully: 'auto' (all but VXLAN-encapsulated traffic, avoiding the checksum-offload drop behind the '63 second delay'), 'always' (upstream's rules), or 'never'.")
}

// Resolve returns the settings: the file's (or the defaults) with every flag given on the
// command line applied over them. Unlike upstream's flags, which a --config file silences,
// a fork flag given explicitly wins over the file, and that is logged.
func (f *Flags) Resolve(fs *pflag.FlagSet, fromFile *Config, haveFile bool) Config {
	f.cfg.MasqueradeRandomFully = RandomFully(f.randomFully)
	if fromFile == nil {
		return f.cfg
	}
	out := *fromFile
	for _, name := range FlagNames {
		if !fs.Changed(name) {
			continue
		}
		if haveFile {
			klog.InfoS("Command-line flag overrides the config file", "flag", name)
		}
		switch name {
		case FlagBindLBIngress:
			out.BindLoadBalancerIngress = f.cfg.BindLoadBalancerIngress
		case FlagProtectedCIDRs:
			out.ProtectedCIDRs = f.cfg.ProtectedCIDRs
		case FlagExternalIPCIDRs:
			out.ExternalIPCIDRs = f.cfg.ExternalIPCIDRs
		case FlagMasqueradeRandomFully:
			out.MasqueradeRandomFully = f.cfg.MasqueradeRandomFully
		}
	}
	return out
}
