package forkconfig

import (
	"encoding/json"
	"fmt"

	"sigs.k8s.io/yaml"
)

// fileFields is where the fork's settings sit in a KubeProxyConfiguration file.
type fileFields struct {
	IPVS *struct {
		BindLoadBalancerIngress *bool    `json:"bindLoadBalancerIngress,omitempty"`
		ProtectedCIDRs          []string `json:"protectedCIDRs,omitempty"`
		ExternalIPCIDRs         []string `json:"externalIPCIDRs,omitempty"`
	} `json:"ipvs,omitempty"`
	IPTables *struct {
		MasqueradeRandomFully *string `json:"masqueradeRandomFully,omitempty"`
	} `json:"iptables,omitempty"`
}

var forkKeys = map[string][]string{
	"ipvs":     {"bindLoadBalancerIngress", "protectedCIDRs", "externalIPCIDRs"},
	"iptables": {"masqueradeRandomFully"},
}

// FromFile reads the fork's fields from a KubeProxyConfiguration file (YAML or JSON) into cfg,
// and returns the file without them, for upstream's strict decoder. A file without fork
// fields is returned unchanged, so upstream's decoding of it is exactly upstream's.
func FromFile(data []byte, cfg *Config) ([]byte, error) {
	var f fileFields
	if err := yaml.Unmarshal(data, &f); err != nil {
		// Not ours to report: upstream's decoder says what is wrong with the file.
		return data, nil
	}
	found := false
	if f.IPVS != nil {
		if v := f.IPVS.BindLoadBalancerIngress; v != nil {
			cfg.BindLoadBalancerIngress, found = *v, true
		}
		if v := f.IPVS.ProtectedCIDRs; v != nil {
			cfg.ProtectedCIDRs, found = v, true
		}
		if v := f.IPVS.ExternalIPCIDRs; v != nil {
			cfg.ExternalIPCIDRs, found = v, true
		}
	}
	if f.IPTables != nil && f.IPTables.MasqueradeRandomFully != nil {
		cfg.MasqueradeRandomFully, found = RandomFully(*f.IPTables.MasqueradeRandomFully), true
	}
	if !found {
		return data, nil
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("reading the fork's fields: %w", err)
	}
	for section, keys := range forkKeys {
		if m, ok := doc[section].(map[string]any); ok {
			for _, k := range keys {
				delete(m, k)
			}
		}
	}
	return json.Marshal(doc)
}

// AddToFile writes the fork's settings into a YAML KubeProxyConfiguration (for
// --write-config-to), so a written file documents them with their values.
func AddToFile(data []byte, cfg Config) ([]byte, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	section := func(name string) map[string]any {
		m, ok := doc[name].(map[string]any)
		if !ok {
			m = map[string]any{}
			doc[name] = m
		}
		return m
	}
	ipvs := section("ipvs")
	ipvs["bindLoadBalancerIngress"] = cfg.BindLoadBalancerIngress
	ipvs["protectedCIDRs"] = nonNil(cfg.ProtectedCIDRs)
	ipvs["externalIPCIDRs"] = nonNil(cfg.ExternalIPCIDRs)
	section("iptables")["masqueradeRandomFully"] = string(cfg.MasqueradeRandomFully)
	return yaml.Marshal(doc)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
