package forkconfig

import (
	"reflect"
	"sort"
	"strings"
	"testing"
)

// TestReadSettingsFile: the --fork-config file sets the fork's fields over what --config said,
// and fails, naming the key, on anything it would otherwise drop or on a disagreement.
func TestReadSettingsFile(t *testing.T) {
	fromConfig := Default()
	fromConfig.ProtectedCIDRs = []string{"192.0.2.1/32"}
	inConfig := []string{"ipvs.protectedCIDRs"}
	cases := []struct {
		name, file string
		want       *Config // nil: an error containing err
		err        string
	}{
		{"adds settings", "ipvs:\n  bindLoadBalancerIngress: false\niptables:\n  masqueradeRandomFully: never\n",
			&Config{ProtectedCIDRs: []string{"192.0.2.1/32"}, MasqueradeRandomFully: RandomFullyNever}, ""},
		{"same value as --config", "ipvs:\n  protectedCIDRs: [192.0.2.1/32]\n",
			&Config{BindLoadBalancerIngress: true, ProtectedCIDRs: []string{"192.0.2.1/32"}, MasqueradeRandomFully: RandomFullyAuto}, ""},
		{"empty file", "", &fromConfig, ""},
		{"JSON", `{"ipvs": {"externalIPCIDRs": ["198.51.100.0/24"]}}`,
			&Config{BindLoadBalancerIngress: true, ProtectedCIDRs: []string{"192.0.2.1/32"}, ExternalIPCIDRs: []string{"198.51.100.0/24"}, MasqueradeRandomFully: RandomFullyAuto}, ""},
		{"differs from --config", "ipvs:\n  protectedCIDRs: [192.0.2.2/32]\n", nil,
			`fork-config.ipvs.protectedCIDRs: Invalid value: ["192.0.2.2/32"]: the --config file sets it to [192.0.2.1/32]: give it in one file`},
		{"an upstream field", "ipvs:\n  scheduler: lc\n", nil, `fork-config.ipvs.scheduler: Unsupported value: "scheduler"`},
		{"an upstream section", "mode: ipvs\n", nil, `fork-config.mode: Unsupported value: "mode"`},
		{"wrong section", "iptables:\n  protectedCIDRs: [10.0.0.0/8]\n", nil, "did you mean ipvs.protectedCIDRs?"},
		{"the flag's name", "masquerade-random-fully: never\n", nil, "did you mean iptables.masqueradeRandomFully?"},
		{"wrong type", "ipvs:\n  protectedCIDRs: 10.0.0.0/8\n", nil, "must be a list of CIDRs, got a string"},
		{"repeated key", "ipvs:\n  bindLoadBalancerIngress: false\n  bindLoadBalancerIngress: true\n", nil, "fork-config.ipvs.bindLoadBalancerIngress: Forbidden: given more than once"},
		{"not a map", "- ipvs\n", nil, "must be a map with the sections ipvs and iptables, got a list"},
		{"not YAML", "ipvs: [\n", nil, "cannot parse the file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ReadSettingsFile([]byte(c.file), fromConfig, inConfig)
			if c.want == nil {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %+v, %v; want an error with %q", got, err, c.err)
				}
				if !reflect.DeepEqual(got, fromConfig) {
					t.Errorf("on error the settings changed to %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, *c.want) {
				t.Errorf("got %+v, want %+v", got, *c.want)
			}
		})
	}
}

// TestReadConfigFileSaysWhatItSet: the fields a --config file sets are what the settings file is
// checked against.
func TestReadConfigFileSaysWhatItSet(t *testing.T) {
	cfg := Default()
	_, set, err := ReadConfigFile([]byte("ipvs:\n  scheduler: rr\n  externalIPCIDRs: []\niptables:\n  masqueradeRandomFully: always\n"), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(set)
	if want := []string{"iptables.masqueradeRandomFully", "ipvs.externalIPCIDRs"}; !reflect.DeepEqual(set, want) {
		t.Errorf("set %v, want %v", set, want)
	}
}
