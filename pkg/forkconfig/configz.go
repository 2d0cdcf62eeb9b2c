package forkconfig

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// ConfigzName is the /configz section of the fork's settings. They are not added to upstream's
// section (kubeproxy.config.k8s.io): a reader that decodes that one strictly, as upstream's
// decoder does, would fail on them.
const ConfigzName = "kube-proxy-ipvs.io"

// The section's object has a kind and an external version, as configz requires.
const (
	configzAPIVersion = "kube-proxy-ipvs.io/v1alpha1"
	configzKind       = "KubeProxyIPVSConfiguration"
)

// Configz is the fork's settings in effect, laid out as in the config file, so that a value
// read from /configz can be pasted back into the file.
type Configz struct {
	metav1.TypeMeta `json:",inline"`
	IPVS            ConfigzIPVS     `json:"ipvs"`
	IPTables        ConfigzIPTables `json:"iptables"`
}

// ConfigzIPVS is the fork's fields of the ipvs section.
type ConfigzIPVS struct {
	BindLoadBalancerIngress bool     `json:"bindLoadBalancerIngress"`
	ProtectedCIDRs          []string `json:"protectedCIDRs"`
	ExternalIPCIDRs         []string `json:"externalIPCIDRs"`
}

// ConfigzIPTables is the fork's field of the iptables section.
type ConfigzIPTables struct {
	MasqueradeRandomFully RandomFully `json:"masqueradeRandomFully"`
}

// Configz returns c for /configz. An empty list shows as [] (none), not null.
func (c Config) Configz() *Configz {
	return &Configz{
		TypeMeta: metav1.TypeMeta{APIVersion: configzAPIVersion, Kind: configzKind},
		IPVS: ConfigzIPVS{
			BindLoadBalancerIngress: c.BindLoadBalancerIngress,
			ProtectedCIDRs:          nonNil(slices.Clone(c.ProtectedCIDRs)),
			ExternalIPCIDRs:         nonNil(slices.Clone(c.ExternalIPCIDRs)),
		},
		IPTables: ConfigzIPTables{MasqueradeRandomFully: c.MasqueradeRandomFully},
	}
}

// DeepCopyObject makes Configz a runtime.Object, which configz requires.
func (c *Configz) DeepCopyObject() runtime.Object {
	out := *c
	out.IPVS.ProtectedCIDRs = slices.Clone(c.IPVS.ProtectedCIDRs)
	out.IPVS.ExternalIPCIDRs = slices.Clone(c.IPVS.ExternalIPCIDRs)
	return &out
}
