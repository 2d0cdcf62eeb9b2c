package forkconfig

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"
)

const upstreamOnly = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: ipvs
ipvs:
  scheduler: rr
`

// TestFileWithoutForkFieldsIsUntouched: upstream's decoder sees such a file byte for byte.
func TestFileWithoutForkFieldsIsUntouched(t *testing.T) {
	cfg := Default()
	out, err := FromFile([]byte(upstreamOnly), &cfg)
	if err != nil || string(out) != upstreamOnly {
		t.Fatalf("FromFile changed an upstream-only file: %q, %v", out, err)
	}
	if cfg.BindLoadBalancerIngress != true || cfg.MasqueradeRandomFully != RandomFullyAuto {
		t.Errorf("defaults changed: %+v", cfg)
	}
}

// TestFileForkFieldsAreReadAndStripped: the fork's fields are read and removed; upstream's
// fields around them stay.
func TestFileForkFieldsAreReadAndStripped(t *testing.T) {
	in := upstreamOnly + `  bindLoadBalancerIngress: false
  protectedCIDRs: ["192.0.2.0/24"]
  externalIPCIDRs: ["203.0.113.0/24"]
iptables:
  masqueradeBit: 14
  masqueradeRandomFully: never
`
	cfg := Default()
	out, err := FromFile([]byte(in), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{BindLoadBalancerIngress: false, ProtectedCIDRs: []string{"192.0.2.0/24"}, ExternalIPCIDRs: []string{"203.0.113.0/24"}, MasqueradeRandomFully: RandomFullyNever}
	if cfg.BindLoadBalancerIngress != want.BindLoadBalancerIngress || cfg.MasqueradeRandomFully != want.MasqueradeRandomFully ||
		strings.Join(cfg.ProtectedCIDRs, ",") != "192.0.2.0/24" || strings.Join(cfg.ExternalIPCIDRs, ",") != "203.0.113.0/24" {
		t.Errorf("read %+v, want %+v", cfg, want)
	}
	var doc map[string]map[string]any
	_ = yaml.Unmarshal(out, &doc)
	for _, k := range []string{"bindLoadBalancerIngress", "protectedCIDRs", "externalIPCIDRs"} {
		if _, ok := doc["ipvs"][k]; ok {
			t.Errorf("ipvs.%s left in the upstream part", k)
		}
	}
	if _, ok := doc["iptables"]["masqueradeRandomFully"]; ok {
		t.Errorf("iptables.masqueradeRandomFully left in the upstream part")
	}
	if doc["ipvs"]["scheduler"] != "rr" || doc["iptables"]["masqueradeBit"] != float64(14) {
		t.Errorf("upstream fields lost: %v", doc)
	}
}

// TestAddToFileRoundTrips: what --write-config-to writes reads back to the same settings.
func TestAddToFileRoundTrips(t *testing.T) {
	want := Config{BindLoadBalancerIngress: false, ProtectedCIDRs: []string{"10.0.0.1/32"}, MasqueradeRandomFully: RandomFullyAlways}
	data, err := AddToFile([]byte(upstreamOnly), want)
	if err != nil {
		t.Fatal(err)
	}
	got := Default()
	if _, err := FromFile(data, &got); err != nil {
		t.Fatal(err)
	}
	if got.BindLoadBalancerIngress != false || got.MasqueradeRandomFully != RandomFullyAlways || strings.Join(got.ProtectedCIDRs, ",") != "10.0.0.1/32" {
		t.Errorf("round trip gave %+v, want %+v", got, want)
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"defaults", Default(), nil},
		{"bad random-fully", Config{MasqueradeRandomFully: "sometimes"}, []string{"iptables.masqueradeRandomFully"}},
		{"bad CIDRs", Config{MasqueradeRandomFully: RandomFullyNever, ProtectedCIDRs: []string{"10.0.0.0/8", "nope"}, ExternalIPCIDRs: []string{"1.2.3.4"}},
			[]string{"ipvs.protectedCIDRs[1]", "ipvs.externalIPCIDRs[0]"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			errs := c.cfg.Validate()
			if len(errs) != len(c.want) {
				t.Fatalf("errors %v, want %d", errs, len(c.want))
			}
			for i, w := range c.want {
				if !strings.HasSuffix(errs[i].Field, w) {
					t.Errorf("error %d on %s, want %s", i, errs[i].Field, w)
				}
			}
		})
	}
}

// TestExplicitFlagsWinOverTheFile: unlike upstream's flags, a fork flag given on the command
// line overrides the config file; flags not given leave the file's values.
func TestExplicitFlagsWinOverTheFile(t *testing.T) {
	var f Flags
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	f.AddFlags(fs)
	if err := fs.Parse([]string{"--masquerade-random-fully=never"}); err != nil {
		t.Fatal(err)
	}
	file := Config{BindLoadBalancerIngress: false, MasqueradeRandomFully: RandomFullyAlways, ProtectedCIDRs: []string{"192.0.2.1/32"}}
	got := f.Resolve(fs, &file, true)
	if got.MasqueradeRandomFully != RandomFullyNever || got.BindLoadBalancerIngress != false || len(got.ProtectedCIDRs) != 1 {
		t.Errorf("resolved %+v", got)
	}
	if noFile := f.Resolve(fs, nil, false); noFile.BindLoadBalancerIngress != true || noFile.MasqueradeRandomFully != RandomFullyNever {
		t.Errorf("without a file: %+v", noFile)
	}
}
