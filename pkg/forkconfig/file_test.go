package forkconfig

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// withIPVS is upstreamOnly with lines added to its ipvs section.
func withIPVS(lines string) string { return upstreamOnly + lines }

// TestFileWrongTypesFail: a fork field of the wrong type used to make the whole file unreadable
// to FromFile, which then passed it on untouched; upstream's lenient fallback dropped the fork
// fields and kube-proxy started with all four settings at their defaults.
func TestFileWrongTypesFail(t *testing.T) {
	cases := []struct {
		name, file string
		want       []string // each error's field path and message, in order
	}{
		{"bindLoadBalancerIngress as a string", withIPVS("  bindLoadBalancerIngress: \"false\"\n"),
			[]string{`KubeProxyConfiguration.ipvs.bindLoadBalancerIngress: Invalid value: "false": must be true or false, got a string`}},
		{"protectedCIDRs as a scalar", withIPVS("  protectedCIDRs: 10.0.0.0/8\n"),
			[]string{`KubeProxyConfiguration.ipvs.protectedCIDRs: Invalid value: "10.0.0.0/8": must be a list of CIDRs, got a string`}},
		{"externalIPCIDRs as a number", withIPVS("  externalIPCIDRs: 0\n"),
			[]string{`KubeProxyConfiguration.ipvs.externalIPCIDRs: Invalid value: 0: must be a list of CIDRs, got a number`}},
		{"masqueradeRandomFully as a number", upstreamOnly + "iptables:\n  masqueradeRandomFully: 1\n",
			[]string{`KubeProxyConfiguration.iptables.masqueradeRandomFully: Invalid value: 1: must be auto, always or never, got a number`}},
		{"masqueradeRandomFully as YAML 1.1's boolean off", upstreamOnly + "iptables:\n  masqueradeRandomFully: off\n",
			[]string{`KubeProxyConfiguration.iptables.masqueradeRandomFully: Invalid value: false: must be auto, always or never, got a boolean`}},
		{"protectedCIDRs as a map", withIPVS("  protectedCIDRs: {vip: 10.0.0.1/32}\n"),
			[]string{`KubeProxyConfiguration.ipvs.protectedCIDRs: Invalid value: must be a list of CIDRs, got a map`}},
		{"a number in a CIDR list", withIPVS("  protectedCIDRs: [192.0.2.0/24, 10, null]\n"),
			[]string{`KubeProxyConfiguration.ipvs.protectedCIDRs[1]: Invalid value: 10: must be a CIDR, got a number`,
				`KubeProxyConfiguration.ipvs.protectedCIDRs[2]: Invalid value: null: must be a CIDR, got null`}},
		{"all wrong at once, in JSON", `{"kind": "KubeProxyConfiguration", "ipvs": {"bindLoadBalancerIngress": 0, "protectedCIDRs": "10.0.0.0/8",
			"externalIPCIDRs": [["10.0.0.0/8"]]}, "iptables": {"masqueradeRandomFully": true}}`,
			[]string{`KubeProxyConfiguration.ipvs.bindLoadBalancerIngress: Invalid value: 0: must be true or false, got a number`,
				`KubeProxyConfiguration.ipvs.protectedCIDRs: Invalid value: "10.0.0.0/8": must be a list of CIDRs, got a string`,
				`KubeProxyConfiguration.ipvs.externalIPCIDRs[0]: Invalid value: must be a CIDR, got a list`,
				`KubeProxyConfiguration.iptables.masqueradeRandomFully: Invalid value: true: must be auto, always or never, got a boolean`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantErrors(t, c.file, c.want) })
	}
}

// TestFileRepeatedAndMisspeltKeysFail: a repeated key silently replaces the other (upstream's
// decoders keep one), and a key in another case, or under another section, is dropped by
// upstream's lenient fallback; for a fork field, either leaves a setting that is not the file's.
func TestFileRepeatedAndMisspeltKeysFail(t *testing.T) {
	cases := []struct {
		name, file string
		want       []string
	}{
		{"repeated key", withIPVS("  protectedCIDRs: [10.0.0.0/8]\n  protectedCIDRs: []\n"),
			[]string{`KubeProxyConfiguration.ipvs.protectedCIDRs: Forbidden: given more than once (another value at line 7): only one would be read`}},
		{"repeated key in a flow mapping", upstreamOnly + "iptables: {masqueradeRandomFully: never, masqueradeRandomFully: always}\n",
			[]string{`KubeProxyConfiguration.iptables.masqueradeRandomFully: Forbidden: given more than once (another value at line 6): only one would be read`}},
		{"repeated section hides the first one's fork fields", withIPVS("  protectedCIDRs: [10.0.0.0/8]\nipvs:\n  scheduler: wrr\n"),
			[]string{`KubeProxyConfiguration.ipvs: Forbidden: given more than once (another value at line 8): only one would be read, with the kube-proxy-ipvs settings in it`}},
		{"repeated key in JSON", `{"ipvs": {"externalIPCIDRs": ["192.0.2.0/24"], "externalIPCIDRs": ["0.0.0.0/0"]}}`,
			[]string{`KubeProxyConfiguration.ipvs.externalIPCIDRs: Forbidden: given more than once: only one would be read`}},
		{"repeated section in JSON", `{"ipvs": {"protectedCIDRs": ["10.0.0.0/8"]}, "mode": "ipvs", "ipvs": {}}`,
			[]string{`KubeProxyConfiguration.ipvs: Forbidden: given more than once: only one would be read, with the kube-proxy-ipvs settings in it`}},
		{"lower case", withIPVS("  protectedcidrs: [10.0.0.0/8]\n"),
			[]string{`KubeProxyConfiguration.ipvs.protectedcidrs: Forbidden: not a field kube-proxy-ipvs reads: did you mean protectedCIDRs?`}},
		{"capitalised", withIPVS("  ProtectedCIDRs: [10.0.0.0/8]\n"),
			[]string{`KubeProxyConfiguration.ipvs.ProtectedCIDRs: Forbidden: not a field kube-proxy-ipvs reads: did you mean protectedCIDRs?`}},
		{"both spellings", withIPVS("  protectedCIDRs: [10.0.0.0/8]\n  ProtectedCIDRs: [192.168.0.0/16]\n"),
			[]string{`KubeProxyConfiguration.ipvs.ProtectedCIDRs: Forbidden: not a field kube-proxy-ipvs reads: did you mean protectedCIDRs?`}},
		{"the flag's name", withIPVS("  ipvs-external-ip-cidrs: [192.0.2.0/24]\n"),
			[]string{`KubeProxyConfiguration.ipvs.ipvs-external-ip-cidrs: Forbidden: not a field kube-proxy-ipvs reads: did you mean externalIPCIDRs?`}},
		{"wrong section", withIPVS("  masqueradeRandomFully: never\n"),
			[]string{`KubeProxyConfiguration.ipvs.masqueradeRandomFully: Forbidden: not a field kube-proxy-ipvs reads: did you mean iptables.masqueradeRandomFully?`}},
		{"top level", upstreamOnly + "bindLoadBalancerIngress: false\n",
			[]string{`KubeProxyConfiguration.bindLoadBalancerIngress: Forbidden: not a field kube-proxy-ipvs reads: did you mean ipvs.bindLoadBalancerIngress?`}},
		{"section in another case", "kind: KubeProxyConfiguration\nIPVS:\n  protectedCIDRs: [10.0.0.0/8]\n",
			[]string{`KubeProxyConfiguration.IPVS.protectedCIDRs: Forbidden: not a field kube-proxy-ipvs reads: did you mean ipvs.protectedCIDRs?`}},
		{"section of the wrong type", "kind: KubeProxyConfiguration\nipvs:\n- protectedCIDRs: [10.0.0.0/8]\n",
			[]string{`KubeProxyConfiguration.ipvs[0].protectedCIDRs: Forbidden: not a field kube-proxy-ipvs reads: did you mean ipvs.protectedCIDRs?`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantErrors(t, c.file, c.want) })
	}
}

// wantErrors checks that FromFile fails on file with exactly want, and leaves the settings alone.
func wantErrors(t *testing.T, file string, want []string) {
	t.Helper()
	cfg := Default()
	out, err := FromFile([]byte(file), &cfg)
	if err == nil {
		t.Fatalf("FromFile accepted the file: settings %+v, upstream part %s", cfg, out)
	}
	var unreadable *UnreadableError
	if errors.As(err, &unreadable) {
		t.Fatalf("FromFile could not parse the file: %v", err)
	}
	got := strings.Split(strings.Trim(err.Error(), "[]"), ", Kube")
	for i := 1; i < len(got); i++ {
		got[i] = "Kube" + got[i]
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if !reflect.DeepEqual(cfg, Default()) {
		t.Errorf("a failed read changed the settings: %+v", cfg)
	}
}

// TestFileReadsWhatUpstreamReads: the fork reads a file as upstream's decoder does, JSON as
// JSON and YAML as YAML 1.1; upstream's fields, repeats included, reach that decoder as they
// were.
func TestFileReadsWhatUpstreamReads(t *testing.T) {
	cases := []struct {
		name, file string
		want       Config
		upstream   string // the upstream part FromFile returns, when it is not the file
	}{{
		// sigs.k8s.io/yaml cannot parse the escaped slashes that some JSON writers put in
		// every CIDR; upstream's decoder reads JSON as JSON.
		name: "JSON with escaped slashes",
		file: `{"kind": "KubeProxyConfiguration", "mode": "ipvs", "ipvs": {"scheduler": "rr", "protectedCIDRs": ["10.0.0.0\/8"],
			"externalIPCIDRs": ["192.0.2.0\/24"], "bindLoadBalancerIngress": false}, "iptables": {"masqueradeRandomFully": "never"}}`,
		want:     Config{ProtectedCIDRs: []string{"10.0.0.0/8"}, ExternalIPCIDRs: []string{"192.0.2.0/24"}, MasqueradeRandomFully: RandomFullyNever},
		upstream: `{"kind":"KubeProxyConfiguration","mode":"ipvs","ipvs":{"scheduler":"rr"},"iptables":{}}`,
	}, {
		name:     "YAML 1.1 booleans",
		file:     withIPVS("  bindLoadBalancerIngress: no\n"),
		want:     Config{MasqueradeRandomFully: RandomFullyAuto},
		upstream: `{"apiVersion":"kubeproxy.config.k8s.io/v1alpha1","ipvs":{"scheduler":"rr"},"kind":"KubeProxyConfiguration","mode":"ipvs"}`,
	}, {
		name:     "null leaves a setting unset",
		file:     withIPVS("  bindLoadBalancerIngress: null\n  protectedCIDRs:\niptables:\n  masqueradeRandomFully: ~\n"),
		want:     Default(),
		upstream: `{"apiVersion":"kubeproxy.config.k8s.io/v1alpha1","iptables":{},"ipvs":{"scheduler":"rr"},"kind":"KubeProxyConfiguration","mode":"ipvs"}`,
	}, {
		name:     "an empty list is none",
		file:     withIPVS("  externalIPCIDRs: []\n"),
		want:     Config{BindLoadBalancerIngress: true, ExternalIPCIDRs: []string{}, MasqueradeRandomFully: RandomFullyAuto},
		upstream: `{"apiVersion":"kubeproxy.config.k8s.io/v1alpha1","ipvs":{"scheduler":"rr"},"kind":"KubeProxyConfiguration","mode":"ipvs"}`,
	}, {
		name:     "upstream's repeats are upstream's to report",
		file:     `{"mode": "iptables", "ipvs": {"scheduler": "rr", "scheduler": "wrr", "protectedCIDRs": []}, "mode": "ipvs", "big": 12345678901234567890}`,
		want:     Config{BindLoadBalancerIngress: true, ProtectedCIDRs: []string{}, MasqueradeRandomFully: RandomFullyAuto},
		upstream: `{"mode":"iptables","ipvs":{"scheduler":"rr","scheduler":"wrr"},"mode":"ipvs","big":12345678901234567890}`,
	}, {
		name: "upstream's repeats and unknown keys without fork fields",
		file: "kind: KubeProxyConfiguration\nmode: iptables\nmode: ipvs\nnftables: {masqueradeAll: true, masqueradeAll: false}\nipvs:\n  scheduler: rr\n  schedular: wrr\n",
		want: Default(),
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Default()
			out, err := FromFile([]byte(c.file), &cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg, c.want) {
				t.Errorf("settings %+v, want %+v", cfg, c.want)
			}
			want := c.upstream
			if want == "" {
				want = c.file
			}
			if string(out) != want {
				t.Errorf("upstream part:\n  %s\nwant:\n  %s", out, want)
			}
		})
	}
}

// TestFileUnreadable: a file that is not YAML or JSON comes back unchanged, for upstream's
// decoder to say what is wrong with it, with an error that says the fork could not read it.
func TestFileUnreadable(t *testing.T) {
	for _, file := range []string{
		withIPVS("  protectedCIDRs: [10.0.0.0/8\n"),
		"ipvs:\n\tprotectedCIDRs: []\n",
		`{"ipvs": {"protectedCIDRs": ["10.0.0.0/8"]},}`,
		withIPVS("  bindLoadBalancerIngress: false\nbig: .inf\n"), // YAML that has no JSON form
	} {
		cfg := Default()
		out, err := FromFile([]byte(file), &cfg)
		var unreadable *UnreadableError
		if !errors.As(err, &unreadable) || string(out) != file || !reflect.DeepEqual(cfg, Default()) {
			t.Errorf("FromFile(%q) = %q, %v (settings %+v), want the file back and an UnreadableError", file, out, err, cfg)
		}
	}
}

// TestAddToFileOutputIsReadStrictly: what --write-config-to writes passes every check.
func TestAddToFileOutputIsReadStrictly(t *testing.T) {
	want := Config{BindLoadBalancerIngress: false, ProtectedCIDRs: []string{"10.0.0.1/32"}, ExternalIPCIDRs: []string{}, MasqueradeRandomFully: RandomFullyNever}
	data, err := AddToFile([]byte(upstreamOnly+"iptables:\n  masqueradeBit: 14\n"), want)
	if err != nil {
		t.Fatal(err)
	}
	got := Default()
	out, err := FromFile(data, &got)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("read back %+v, %v; want %+v", got, err, want)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(out, &doc); err != nil || doc["iptables"].(map[string]any)["masqueradeBit"] != float64(14) {
		t.Errorf("upstream part %s: %v", out, err)
	}
}
