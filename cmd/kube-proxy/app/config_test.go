package app_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	upstream "k8s.io/kubernetes/cmd/kube-proxy/app"
	"k8s.io/kubernetes/pkg/features"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	proxyconfigscheme "k8s.io/kubernetes/pkg/proxy/apis/config/scheme"
	"k8s.io/kubernetes/pkg/proxy/apis/config/validation"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/cmd/kube-proxy/app"
)

// kubeadmIPVS is the kube-proxy ConfigMap's config.conf as kubeadm v1.37 writes it for an ipvs
// cluster (testdata/kubeadm: written by kubeadm's own code, hack/compat.sh; every v1alpha1 field,
// zero values included), with the scheduler an operator usually sets.
var kubeadmIPVS = strings.Replace(mustReadTestdata("testdata/kubeadm/v1.37/ipvs.yaml"), `  scheduler: ""`, "  scheduler: rr", 1)

func mustReadTestdata(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	if !strings.Contains(string(b), `  scheduler: ""`) {
		panic(path + ": no empty ipvs scheduler to set")
	}
	return string(b)
}

// kubeadmIPTables is the same file in iptables mode with a few operator edits.
var kubeadmIPTables = strings.NewReplacer(
	"mode: ipvs", "mode: iptables",
	"  masqueradeBit: null\n  minSyncPeriod: 0s\n  syncPeriod: 0s\nipvs:", "  masqueradeBit: 13\n  minSyncPeriod: 2s\n  syncPeriod: 45s\nipvs:",
	`metricsBindAddress: ""`, "metricsBindAddress: 0.0.0.0:10249",
	"  maxPerCore: null", "  maxPerCore: 0",
).Replace(kubeadmIPVS)

const nftablesMinimal = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
clientConnection:
  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
detectLocalMode: InterfaceNamePrefix
detectLocal:
  interfaceNamePrefix: cali
nftables:
  syncPeriod: 1m
  minSyncPeriod: 0s
`

// unknownField has fields this version does not know (as a file written for a newer
// kube-proxy would): strict decoding fails and the lenient fallback must load the rest.
const unknownField = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: ipvs
clusterCIDR: 10.244.0.0/16,fd00:10:244::/56
someFutureSetting: true
ipvs:
  scheduler: wrr
  someFutureKnob: 3
  tcpTimeout: 900s
`

// duplicateField repeats a field: strict decoding rejects it, the lenient decoder keeps the last.
const duplicateField = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clusterCIDR: 10.96.0.0/12
mode: ipvs
`

const jsonConfig = `{
  "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
  "kind": "KubeProxyConfiguration",
  "mode": "ipvs",
  "bindAddress": "192.0.2.10",
  "clusterCIDR": "10.244.0.0/16",
  "ipvs": {"scheduler": "lc", "excludeCIDRs": ["198.51.100.0/24"], "syncPeriod": "20s", "minSyncPeriod": "1s"},
  "nodePortAddresses": ["primary"],
  "conntrack": {"maxPerCore": 65536, "min": 262144, "tcpEstablishedTimeout": "12h0m0s"},
  "logging": {"verbosity": 3, "vmodule": [{"filePattern": "proxier", "verbosity": 6}]}
}`

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func newFlagSet(name string) *pflag.FlagSet {
	return pflag.NewFlagSet(name, pflag.ContinueOnError)
}

// resolveOurs runs our options the way the command does (parse, Complete), then Run with
// --write-config-to set, as an operator dumping the resolved configuration would. WriteConfigTo
// is set only after Complete, so that Complete sees what a normal start sees.
func resolveOurs(t *testing.T, args []string) ([]byte, *kubeproxyconfig.KubeProxyConfiguration, error) {
	t.Helper()
	opts := app.NewOptions()
	fs := newFlagSet("ours")
	opts.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("ours: parsing %q: %v", args, err)
	}
	if err := opts.Complete(fs); err != nil {
		return nil, nil, err
	}
	out := filepath.Join(t.TempDir(), "ours.yaml")
	opts.WriteConfigTo = out
	if err := opts.Run(context.Background()); err != nil {
		t.Fatalf("ours: writing the config: %v", err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return data, opts.Config(), nil
}

// resolveUpstream does the same with upstream kube-proxy's options: its config field is
// unexported, so the resolved configuration is read back from what its --write-config-to writes.
// (Its Complete starts an fsnotify watch on a config file; the watch is never run.)
func resolveUpstream(t *testing.T, args []string) ([]byte, error) {
	t.Helper()
	opts := upstream.NewOptions()
	fs := newFlagSet("upstream")
	opts.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("upstream: parsing %q: %v", args, err)
	}
	if err := opts.Complete(fs); err != nil {
		return nil, err
	}
	out := filepath.Join(t.TempDir(), "upstream.yaml")
	opts.WriteConfigTo = out
	if err := opts.Run(context.Background()); err != nil {
		t.Fatalf("upstream: writing the config: %v", err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return data, nil
}

// decodeNeutral decodes a written configuration with the scheme both implementations share, not
// with our loader, and without defaulting (which would turn a disabled healthz server, "", back
// into the default address).
func decodeNeutral(t *testing.T, data []byte) *kubeproxyconfig.KubeProxyConfiguration {
	t.Helper()
	versioned, _, err := proxyconfigscheme.Codecs.UniversalDeserializer().Decode(data, nil, nil)
	if err != nil {
		t.Fatalf("decoding %s: %v", data, err)
	}
	internal, err := proxyconfigscheme.Scheme.ConvertToVersion(versioned, kubeproxyconfig.SchemeGroupVersion)
	if err != nil {
		t.Fatalf("converting %s: %v", data, err)
	}
	return internal.(*kubeproxyconfig.KubeProxyConfiguration)
}

// withNilGates is a copy of c with an empty featureGates map as nil: the defaulting of a loaded
// file makes an empty map where a decoding without defaulting leaves none.
func withNilGates(c *kubeproxyconfig.KubeProxyConfiguration) *kubeproxyconfig.KubeProxyConfiguration {
	c = c.DeepCopy()
	if len(c.FeatureGates) == 0 {
		c.FeatureGates = nil
	}
	return c
}

// decodeDefaulted decodes and defaults a configuration file as a loader does, with the shared scheme.
func decodeDefaulted(t *testing.T, data []byte) *kubeproxyconfig.KubeProxyConfiguration {
	t.Helper()
	obj, _, err := proxyconfigscheme.Codecs.UniversalDecoder().Decode(data, nil, nil)
	if err != nil {
		t.Fatalf("decoding %s: %v", data, err)
	}
	return obj.(*kubeproxyconfig.KubeProxyConfiguration)
}

// dump renders c for failure messages (the type's String method shows only TypeMeta).
func dump(c *kubeproxyconfig.KubeProxyConfiguration) string {
	data, err := app.EncodeConfig(c)
	if err != nil {
		return err.Error()
	}
	return string(data)
}

// resolveBoth resolves args with ours and upstream's options and fails the test unless both give
// the same error, or the same configuration: our resolved configuration equals the one upstream
// writes with --write-config-to, encodes to the same bytes, and the file ours writes holds every
// field upstream's holds, with the same value (ours adds the fork's own fields). It returns ours
// (nil and the error when Complete failed).
func resolveBoth(t *testing.T, args []string) (*kubeproxyconfig.KubeProxyConfiguration, error) {
	t.Helper()
	upYAML, upErr := resolveUpstream(t, args)
	ourYAML, ours, ourErr := resolveOurs(t, args)
	if (upErr == nil) != (ourErr == nil) || (upErr != nil && upErr.Error() != ourErr.Error()) {
		t.Fatalf("Complete(%q): error %v, upstream's %v", args, ourErr, upErr)
	}
	if upErr != nil {
		return nil, ourErr
	}
	if up := decodeNeutral(t, upYAML); !reflect.DeepEqual(withNilGates(ours), withNilGates(up)) {
		t.Errorf("resolved config for %q differs from upstream's (-upstream +ours):\n%s", args, cmp.Diff(up, ours))
	}
	encoded, err := app.EncodeConfig(ours)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(encoded, upYAML) {
		t.Errorf("encoded config after %q differs from upstream's --write-config-to (-upstream +ours):\n%s", args, cmp.Diff(string(upYAML), string(encoded)))
	}
	var upDoc, ourDoc map[string]any
	if err := yaml.Unmarshal(upYAML, &upDoc); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(ourYAML, &ourDoc); err != nil {
		t.Fatalf("ours wrote invalid YAML: %v\n%s", err, ourYAML)
	}
	for _, d := range missingFrom(upDoc, ourDoc, "") {
		t.Errorf("--write-config-to after %q: %s", args, d)
	}
	return ours, nil
}

// missingFrom lists the fields of want that got lacks or has with another value.
func missingFrom(want, got map[string]any, path string) []string {
	var out []string
	for k, w := range want {
		g, ok := got[k]
		switch wm, isMap := w.(map[string]any); {
		case !ok:
			out = append(out, fmt.Sprintf("%s%s missing (upstream writes %v)", path, k, w))
		case isMap:
			gm, _ := g.(map[string]any)
			out = append(out, missingFrom(wm, gm, path+k+".")...)
		case !reflect.DeepEqual(w, g):
			out = append(out, fmt.Sprintf("%s%s is %v, upstream writes %v", path, k, g, w))
		}
	}
	sort.Strings(out)
	return out
}

func isStrictDecodingError(data string) bool {
	_, _, err := proxyconfigscheme.Codecs.UniversalDecoder().Decode([]byte(data), nil, nil)
	return err != nil && runtime.IsStrictDecodingError(err)
}

// TestConfigFileMatchesUpstream loads config files through our Options and upstream's, and
// checks that both resolve to the same configuration (or fail with the same error).
func TestConfigFileMatchesUpstream(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		lenient bool // strict decoding fails; only the lenient fallback loads it
		wantErr string
		check   func(t *testing.T, c *kubeproxyconfig.KubeProxyConfiguration)
	}{{
		name: "kubeadm ipvs",
		file: kubeadmIPVS,
		check: func(t *testing.T, c *kubeproxyconfig.KubeProxyConfiguration) {
			// ipvs.syncPeriod 0s is defaulted to 30s; ipvs.minSyncPeriod has no default.
			want := map[string]bool{
				"mode":       c.Mode == kubeproxyconfig.ProxyModeIPVS,
				"kubeconfig": c.ClientConnection.Kubeconfig == "/var/lib/kube-proxy/kubeconfig.conf",
				"clusterCIDR": reflect.DeepEqual(c.DetectLocal.ClusterCIDRs, []string{"10.244.0.0/16"}) &&
					c.DetectLocalMode == kubeproxyconfig.LocalModeClusterCIDR,
				"ipvs":        c.IPVS.Scheduler == "rr" && c.IPVS.StrictARP,
				"syncPeriod":  c.SyncPeriod.Duration == 30*time.Second && c.MinSyncPeriod.Duration == 0,
				"masqBit":     ptr.Deref(c.IPTables.MasqueradeBit, -1) == 14,
				"conntrack":   ptr.Deref(c.Linux.Conntrack.MaxPerCore, -1) == 32768 && c.Linux.Conntrack.TCPEstablishedTimeout.Duration == 24*time.Hour,
				"healthz":     c.HealthzBindAddress == "0.0.0.0:10256" && c.MetricsBindAddress == "127.0.0.1:10249",
				"bindAddress": c.BindAddress == "0.0.0.0",
			}
			for k, ok := range want {
				if !ok {
					t.Errorf("%s not as kubeadm's file says (or as defaulted): %s", k, dump(c))
				}
			}
		},
	}, {
		name: "kubeadm iptables",
		file: kubeadmIPTables,
		check: func(t *testing.T, c *kubeproxyconfig.KubeProxyConfiguration) {
			if c.Mode != kubeproxyconfig.ProxyModeIPTables || *c.IPTables.MasqueradeBit != 13 || c.SyncPeriod.Duration != 45*time.Second ||
				c.MinSyncPeriod.Duration != 2*time.Second || *c.Linux.Conntrack.MaxPerCore != 0 || c.MetricsBindAddress != "0.0.0.0:10249" {
				t.Errorf("iptables settings not loaded: %s", dump(c))
			}
		},
	}, {
		name: "nftables",
		file: nftablesMinimal,
		check: func(t *testing.T, c *kubeproxyconfig.KubeProxyConfiguration) {
			if c.Mode != kubeproxyconfig.ProxyModeNFTables || !reflect.DeepEqual(c.NodePortAddresses, []string{"primary"}) ||
				c.DetectLocalMode != kubeproxyconfig.LocalModeInterfaceNamePrefix || c.DetectLocal.InterfaceNamePrefix != "cali" ||
				c.SyncPeriod.Duration != time.Minute {
				t.Errorf("nftables settings or defaults wrong: %s", dump(c))
			}
		},
	}, {
		name:    "unknown field (lenient)",
		file:    unknownField,
		lenient: true,
		check: func(t *testing.T, c *kubeproxyconfig.KubeProxyConfiguration) {
			if c.Mode != kubeproxyconfig.ProxyModeIPVS || c.IPVS.Scheduler != "wrr" || c.IPVS.TCPTimeout.Duration != 15*time.Minute ||
				!reflect.DeepEqual(c.DetectLocal.ClusterCIDRs, []string{"10.244.0.0/16", "fd00:10:244::/56"}) {
				t.Errorf("known fields of a file with unknown ones not loaded: %s", dump(c))
			}
		},
	}, {
		name:    "duplicate field (lenient)",
		file:    duplicateField,
		lenient: true,
		check: func(t *testing.T, c *kubeproxyconfig.KubeProxyConfiguration) {
			if c.Mode != kubeproxyconfig.ProxyModeIPVS || !reflect.DeepEqual(c.DetectLocal.ClusterCIDRs, []string{"10.96.0.0/12"}) {
				t.Errorf("duplicate field: want the last mode (ipvs): %s", dump(c))
			}
		},
	}, {
		name: "json",
		file: jsonConfig,
		check: func(t *testing.T, c *kubeproxyconfig.KubeProxyConfiguration) {
			if c.Mode != kubeproxyconfig.ProxyModeIPVS || c.BindAddress != "192.0.2.10" || c.IPVS.Scheduler != "lc" ||
				c.SyncPeriod.Duration != 20*time.Second || !reflect.DeepEqual(c.IPVS.ExcludeCIDRs, []string{"198.51.100.0/24"}) ||
				*c.Linux.Conntrack.Min != 262144 || c.Logging.Verbosity != 3 || len(c.Logging.VModule) != 1 {
				t.Errorf("JSON settings not loaded: %s", dump(c))
			}
		},
	}, {
		name:    "unknown kind",
		file:    strings.Replace(nftablesMinimal, "kind: KubeProxyConfiguration", "kind: KubeletConfiguration", 1),
		wantErr: "failed to decode",
	}, {
		name:    "bad duration (not a strictness error: no lenient fallback)",
		file:    strings.Replace(nftablesMinimal, "syncPeriod: 1m", "syncPeriod: often", 1),
		wantErr: "failed to decode",
	}, {
		name:    "unknown field plus a type error",
		file:    unknownField + "oomScoreAdj: high\n",
		wantErr: "failed",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := isStrictDecodingError(tc.file); got != tc.lenient && tc.wantErr == "" {
				t.Fatalf("fixture: strict decoding error = %v, want %v", got, tc.lenient)
			}
			path := writeFile(t, "config.conf", tc.file)
			cfg, err := resolveBoth(t, []string{"--config=" + path})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Complete: %v", err)
			}
			tc.check(t, cfg)
			if errs := app.ValidateConfig(cfg); len(errs) != 0 {
				t.Errorf("fixture should be valid: %v", errs.ToAggregate())
			}
		})
	}
}

// loadKubeadmIPVS is the kubeadm ipvs file resolved by our Options (the base of the
// validation cases).
func loadKubeadmIPVS(t *testing.T) *kubeproxyconfig.KubeProxyConfiguration {
	t.Helper()
	_, cfg, err := resolveOurs(t, []string{"--config=" + writeFile(t, "config.conf", kubeadmIPVS)})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestValidationMatchesUpstream checks that invalid configurations get exactly upstream's
// validation errors (with the IPVS gate on, its default in v1.37).
func TestValidationMatchesUpstream(t *testing.T) {
	if !utilfeature.DefaultFeatureGate.Enabled(features.KubeProxyIPVS) {
		t.Fatal("KubeProxyIPVS gate is off: another test leaked its setting")
	}
	tests := []struct {
		name      string
		mutate    func(c *kubeproxyconfig.KubeProxyConfiguration)
		wantField string // a field every error list must name; "" for a valid config
	}{
		{"valid", func(c *kubeproxyconfig.KubeProxyConfiguration) {}, ""},
		{"masqueradeBit 32", func(c *kubeproxyconfig.KubeProxyConfiguration) { c.IPTables.MasqueradeBit = ptr.To[int32](32) },
			"KubeProxyConfiguration.KubeProxyIPTablesConfiguration.MasqueradeBit"},
		{"masqueradeBit -1", func(c *kubeproxyconfig.KubeProxyConfiguration) { c.IPTables.MasqueradeBit = ptr.To[int32](-1) },
			"KubeProxyConfiguration.KubeProxyIPTablesConfiguration.MasqueradeBit"},
		{"negative syncPeriod", func(c *kubeproxyconfig.KubeProxyConfiguration) { c.SyncPeriod.Duration = -time.Second },
			"KubeProxyConfiguration.SyncPeriod"},
		{"zero configSyncPeriod", func(c *kubeproxyconfig.KubeProxyConfiguration) { c.ConfigSyncPeriod.Duration = 0 },
			"KubeProxyConfiguration.ConfigSyncPeriod"},
		{"minSyncPeriod > syncPeriod", func(c *kubeproxyconfig.KubeProxyConfiguration) {
			c.SyncPeriod.Duration, c.MinSyncPeriod.Duration = 5*time.Second, 10*time.Second
		}, "KubeProxyConfiguration.SyncPeriod"},
		{"bad bindAddress", func(c *kubeproxyconfig.KubeProxyConfiguration) { c.BindAddress = "10.0.0" },
			"KubeProxyConfiguration.BindAddress"},
		{"bad metricsBindAddress", func(c *kubeproxyconfig.KubeProxyConfiguration) { c.MetricsBindAddress = "127.0.0.1" },
			"KubeProxyConfiguration.MetricsBindAddress"},
		{"bad nodePortAddresses CIDR", func(c *kubeproxyconfig.KubeProxyConfiguration) { c.NodePortAddresses = []string{"10.0.0.0/33"} },
			"KubeProxyConfiguration.NodePortAddresses[0]"},
		{"bad nodePortAddresses keyword", func(c *kubeproxyconfig.KubeProxyConfiguration) {
			c.NodePortAddresses = []string{"primary", "everything"}
		}, "KubeProxyConfiguration.NodePortAddresses[1]"},
		{"bad detectLocalMode", func(c *kubeproxyconfig.KubeProxyConfiguration) { c.DetectLocalMode = "PodCIDR" },
			"KubeProxyConfiguration.DetectLocalMode"},
		{"bridge mode without interface", func(c *kubeproxyconfig.KubeProxyConfiguration) {
			c.DetectLocalMode = kubeproxyconfig.LocalModeBridgeInterface
		}, "KubeProxyConfiguration.DetectLocalConfiguration.InterfaceName"},
		{"bad clusterCIDR", func(c *kubeproxyconfig.KubeProxyConfiguration) {
			c.DetectLocal.ClusterCIDRs = []string{"10.244.0.0/16", "nope"}
		}, "KubeProxyConfiguration.DetectLocalConfiguration.ClusterCIDRs[1]"},
		{"negative ipvs tcpTimeout", func(c *kubeproxyconfig.KubeProxyConfiguration) { c.IPVS.TCPTimeout.Duration = -time.Second },
			"KubeProxyConfiguration.KubeProxyIPVSConfiguration.TCPTimeout"},
		{"negative ipvs tcpFinTimeout and udpTimeout", func(c *kubeproxyconfig.KubeProxyConfiguration) {
			c.IPVS.TCPFinTimeout.Duration, c.IPVS.UDPTimeout.Duration = -time.Second, -time.Minute
		}, "KubeProxyConfiguration.KubeProxyIPVSConfiguration.UDPTimeout"},
		{"bad ipvs excludeCIDRs", func(c *kubeproxyconfig.KubeProxyConfiguration) {
			c.IPVS.ExcludeCIDRs = []string{"198.51.100.0/24", "1.2.3"}
		}, "KubeProxyConfiguration.KubeProxyIPVSConfiguration.ExcludeCidrs[1]"},
		{"bad ipvs section ignored in iptables mode", func(c *kubeproxyconfig.KubeProxyConfiguration) {
			c.Mode = kubeproxyconfig.ProxyModeIPTables
			c.IPVS.TCPTimeout.Duration = -time.Second
		}, ""},
		{"unknown mode", func(c *kubeproxyconfig.KubeProxyConfiguration) { c.Mode = "userspace" },
			"KubeProxyConfiguration.Mode.ProxyMode"},
		{"negative conntrack", func(c *kubeproxyconfig.KubeProxyConfiguration) { c.Linux.Conntrack.Min = ptr.To[int32](-1) },
			"KubeProxyConfiguration.KubeProxyLinuxConfiguration.KubeProxyConntrackConfiguration.Min"},
		{"several at once", func(c *kubeproxyconfig.KubeProxyConfiguration) {
			c.IPTables.MasqueradeBit = ptr.To[int32](40)
			c.SyncPeriod.Duration = -time.Second
			c.BindAddress = "::g"
			c.IPVS.TCPTimeout.Duration = -time.Second
		}, "KubeProxyConfiguration.BindAddress"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := loadKubeadmIPVS(t)
			tc.mutate(cfg)
			up := validation.Validate(cfg)
			ours := app.ValidateConfig(cfg)
			if !reflect.DeepEqual(ours, up) {
				t.Errorf("errors differ from upstream's (-upstream +ours):\n%s", cmp.Diff(up, ours))
			}
			if tc.wantField == "" {
				if len(ours) != 0 {
					t.Errorf("want no error, got %v", ours.ToAggregate())
				}
				return
			}
			if !hasField(ours, tc.wantField) {
				t.Errorf("want an error on %s, got %v", tc.wantField, ours.ToAggregate())
			}
		})
	}
}

func hasField(errs field.ErrorList, path string) bool {
	for _, e := range errs {
		if e.Field == path {
			return true
		}
	}
	return false
}

// setIPVSGate sets the global KubeProxyIPVS gate (Complete does that from a config file's
// featureGates) and restores it when the test ends.
func setIPVSGate(t *testing.T, enabled bool) {
	t.Helper()
	before := utilfeature.DefaultFeatureGate.Enabled(features.KubeProxyIPVS)
	t.Cleanup(func() {
		if err := utilfeature.DefaultMutableFeatureGate.SetFromMap(map[string]bool{string(features.KubeProxyIPVS): before}); err != nil {
			t.Errorf("restoring the KubeProxyIPVS gate: %v", err)
		}
	})
	if err := utilfeature.DefaultMutableFeatureGate.SetFromMap(map[string]bool{string(features.KubeProxyIPVS): enabled}); err != nil {
		t.Fatal(err)
	}
}

// TestIPVSModeValidWithGateOff is the fork's deliberate difference: upstream rejects `mode: ipvs`
// once the KubeProxyIPVS gate is off (and will once it is removed); ours accepts it, and still
// validates the ipvs section.
func TestIPVSModeValidWithGateOff(t *testing.T) {
	modePath := "KubeProxyConfiguration.Mode.ProxyMode"
	file := kubeadmIPVS + "featureGates:\n  KubeProxyIPVS: false\n"

	t.Run("through Complete and Validate", func(t *testing.T) {
		setIPVSGate(t, true) // restored afterwards; Complete turns it off from the file
		path := writeFile(t, "config.conf", file)

		up := upstream.NewOptions()
		upFS := newFlagSet("upstream")
		up.AddFlags(upFS)
		if err := upFS.Parse([]string{"--config=" + path}); err != nil {
			t.Fatal(err)
		}
		if err := up.Complete(upFS); err != nil {
			t.Fatal(err)
		}
		if utilfeature.DefaultFeatureGate.Enabled(features.KubeProxyIPVS) {
			t.Fatal("Complete did not apply featureGates from the file")
		}
		if err := up.Validate(); err == nil || !strings.Contains(err.Error(), modePath) {
			t.Errorf("upstream Validate: %v, want an error on %s", err, modePath)
		}

		ours := app.NewOptions()
		ourFS := newFlagSet("ours")
		ours.AddFlags(ourFS)
		if err := ourFS.Parse([]string{"--config=" + path}); err != nil {
			t.Fatal(err)
		}
		if err := ours.Complete(ourFS); err != nil {
			t.Fatal(err)
		}
		if ours.Config().Mode != kubeproxyconfig.ProxyModeIPVS || ours.Config().FeatureGates[string(features.KubeProxyIPVS)] {
			t.Fatalf("file not loaded: mode %q, gates %v", ours.Config().Mode, ours.Config().FeatureGates)
		}
		if err := ours.Validate(); err != nil {
			t.Errorf("ours rejects mode ipvs with the gate off: %v", err)
		}
	})

	t.Run("validation errors", func(t *testing.T) {
		setIPVSGate(t, false)
		cfg := decodeDefaulted(t, []byte(file))
		cfg.DetectLocalMode = kubeproxyconfig.LocalModeClusterCIDR // as Complete defaults it

		up := validation.Validate(cfg)
		if len(up) != 1 || up[0].Field != modePath || up[0].BadValue != "ipvs" {
			t.Errorf("upstream: want exactly the mode error, got %v", up.ToAggregate())
		}
		if ours := app.ValidateConfig(cfg); len(ours) != 0 {
			t.Errorf("ours: want no error, got %v", ours.ToAggregate())
		}

		// A bad ipvs section is still rejected, with upstream's errors less the mode one.
		cfg.IPVS.TCPTimeout.Duration = -time.Second
		cfg.IPVS.ExcludeCIDRs = []string{"not-a-cidr"}
		ours := app.ValidateConfig(cfg)
		var want field.ErrorList
		for _, e := range validation.Validate(cfg) {
			if e.Field != modePath {
				want = append(want, e)
			}
		}
		if len(want) != 2 || !reflect.DeepEqual(ours, want) {
			t.Errorf("bad ipvs section with the gate off (-want +ours):\n%s", cmp.Diff(want, ours))
		}

		// Any other unknown mode is still an error.
		cfg = decodeDefaulted(t, []byte(file))
		cfg.DetectLocalMode = kubeproxyconfig.LocalModeClusterCIDR
		cfg.Mode = "kernelspace"
		if ours := app.ValidateConfig(cfg); !hasField(ours, modePath) {
			t.Errorf("mode kernelspace: want an error on %s, got %v", modePath, ours.ToAggregate())
		}
	})
}

// TestWriteConfigRoundTrip checks --write-config-to: the defaults ours writes equal upstream's and
// decode back to the same configuration, and a loaded kubeadm file written back is stable.
func TestWriteConfigRoundTrip(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		args := []string{"--write-config-to=" + filepath.Join(t.TempDir(), "ignored.yaml")}
		written, ours, err := resolveOurs(t, args)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := resolveBoth(t, args); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(written), "kind: KubeProxyConfiguration") || !strings.Contains(string(written), "apiVersion: kubeproxy.config.k8s.io/v1alpha1") {
			t.Errorf("written config is not v1alpha1:\n%s", written)
		}
		back, err := app.DecodeConfig(written)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(withNilGates(back), withNilGates(ours)) {
			t.Errorf("defaults do not round-trip through our decoder (-written +read back):\n%s", cmp.Diff(ours, back))
		}
		rewritten, again, err := resolveOurs(t, []string{"--config=" + writeFile(t, "written.yaml", string(written))})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(withNilGates(again), withNilGates(ours)) || !bytes.Equal(rewritten, written) {
			t.Errorf("written defaults loaded as --config differ (-written +loaded):\n%s\n%s", cmp.Diff(ours, again), cmp.Diff(string(written), string(rewritten)))
		}
	})

	t.Run("kubeadm file", func(t *testing.T) {
		first, cfg, err := resolveOurs(t, []string{"--config=" + writeFile(t, "config.conf", kubeadmIPVS)})
		if err != nil {
			t.Fatal(err)
		}
		second, cfg2, err := resolveOurs(t, []string{"--config=" + writeFile(t, "config.conf", string(first))})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, second) {
			t.Errorf("written config changes when re-read and written again:\n%s", cmp.Diff(string(first), string(second)))
		}
		if !reflect.DeepEqual(cfg, cfg2) {
			t.Errorf("re-read config differs (-first +second):\n%s", cmp.Diff(cfg, cfg2))
		}
		if cfg2.Mode != kubeproxyconfig.ProxyModeIPVS || cfg2.IPVS.Scheduler != "rr" {
			t.Errorf("re-read config lost the ipvs settings: %s", dump(cfg2))
		}
	})
}

// TestFlagFoldingMatchesUpstream checks how flags that have no config field of their own, and
// the config file, fold into the resolved configuration, against upstream's Complete.
func TestFlagFoldingMatchesUpstream(t *testing.T) {
	fileWithVModule := strings.Replace(kubeadmIPVS, "  verbosity: 0\n",
		"  verbosity: 1\n  vmodule:\n  - filePattern: proxier\n    verbosity: 4\n", 1)
	tests := []struct {
		name    string
		args    []string
		file    string // written and passed as --config when set
		wantErr string
		check   func(t *testing.T, c *kubeproxyconfig.KubeProxyConfiguration)
	}{{
		name: "ipvs-sync-period counts in ipvs mode",
		args: []string{"--proxy-mode=ipvs", "--ipvs-sync-period=7s", "--ipvs-min-sync-period=3s", "--iptables-sync-period=11s", "--iptables-min-sync-period=2s"},
		check: func(t *testing.T, c *kubeproxyconfig.KubeProxyConfiguration) {
			if c.SyncPeriod.Duration != 7*time.Second || c.MinSyncPeriod.Duration != 3*time.Second {
				t.Errorf("sync periods %v/%v, want the ipvs ones 7s/3s", c.SyncPeriod, c.MinSyncPeriod)
			}
		},
	}, {
		name: "iptables-sync-period counts in iptables mode",
		args: []string{"--proxy-mode=iptables", "--ipvs-sync-period=7s", "--ipvs-min-sync-period=3s", "--iptables-sync-period=11s", "--iptables-min-sync-period=2s"},
		check: func(t *testing.T, c *kubeproxyconfig.KubeProxyConfiguration) {
			if c.SyncPeriod.Duration != 11*time.Second || c.MinSyncPeriod.Duration != 2*time.Second {
				t.Errorf("sync periods %v/%v, want the iptables ones 11s/2s", c.SyncPeriod, c.MinSyncPeriod)
			}
		},
	}, {
		name: "iptables-sync-period counts in nftables mode",
		args: []string{"--proxy-mode=nftables", "--ipvs-sync-period=7s", "--iptables-sync-period=11s"},
		check: func(t *testing.T, c *kubeproxyconfig.KubeProxyConfiguration) {
			if c.SyncPeriod.Duration != 11*time.Second {
				t.Errorf("sync period %v, want 11s", c.SyncPeriod)
			}
		},
	}, {
		name: "ipvs-sync-period ignored without a mode",
		args: []string{"--ipvs-sync-period=7s"},
		check: func(t *testing.T, c *kubeproxyconfig.KubeProxyConfiguration) {
			if c.SyncPeriod.Duration != 30*time.Second || c.Mode != kubeproxyconfig.ProxyModeIPTables {
				t.Errorf("sync period %v mode %q, want the default 30s, iptables", c.SyncPeriod, c.Mode)
			}
		},
	}, {
		name: "cluster-cidr splits on commas",
		args: []string{"--cluster-cidr=10.244.0.0/16,fd00:10:244::/56"},
		check: func(t *testing.T, c *kubeproxyconfig.KubeProxyConfiguration) {
			if !reflect.DeepEqual(c.DetectLocal.ClusterCIDRs, []string{"10.244.0.0/16", "fd00:10:244::/56"}) {
				t.Errorf("cluster CIDRs %q", c.DetectLocal.ClusterCIDRs)
			}
		},
	}, {
		name: "healthz-port 0 disables healthz",
		args: []string{"--healthz-port=0"},
		check: func(t *testing.T, c *kubeproxyconfig.KubeProxyConfiguration) {
			if c.HealthzBindAddress != "" || c.MetricsBindAddress != "127.0.0.1:10249" {
				t.Errorf("healthz %q metrics %q, want healthz disabled", c.HealthzBindAddress, c.MetricsBindAddress)
			}
		},
	}, {
		name: "healthz-port and metrics-port set the ports",
		args: []string{"--healthz-port=12345", "--metrics-port=0", "--healthz-bind-address=192.0.2.1"},
		check: func(t *testing.T, c *kubeproxyconfig.KubeProxyConfiguration) {
			if c.HealthzBindAddress != "192.0.2.1:12345" || c.MetricsBindAddress != "" {
				t.Errorf("healthz %q metrics %q", c.HealthzBindAddress, c.MetricsBindAddress)
			}
		},
	}, {
		name: "hostname-override is trimmed and lower-cased",
		args: []string{"--hostname-override=  Worker-1.Example.COM "},
		check: func(t *testing.T, c *kubeproxyconfig.KubeProxyConfiguration) {
			if c.HostnameOverride != "worker-1.example.com" {
				t.Errorf("hostname override %q", c.HostnameOverride)
			}
		},
	}, {
		name:    "all-space hostname-override is an error",
		args:    []string{"--hostname-override=   "},
		wantErr: "empty hostname-override is invalid",
	}, {
		name: "config file overrides flags, except logging flags and hostname-override",
		args: []string{"--proxy-mode=nftables", "--iptables-sync-period=5s", "--ipvs-sync-period=6s", "--cluster-cidr=192.168.0.0/16",
			"--healthz-port=0", "--ipvs-scheduler=sh", "--conntrack-max-per-core=1", "-v=5", "--vmodule=server=2", "--hostname-override=Node-A"},
		file: fileWithVModule,
		check: func(t *testing.T, c *kubeproxyconfig.KubeProxyConfiguration) {
			if c.Mode != kubeproxyconfig.ProxyModeIPVS || c.SyncPeriod.Duration != 30*time.Second || c.IPVS.Scheduler != "rr" ||
				!reflect.DeepEqual(c.DetectLocal.ClusterCIDRs, []string{"10.244.0.0/16"}) || c.HealthzBindAddress != "0.0.0.0:10256" ||
				*c.Linux.Conntrack.MaxPerCore != 32768 {
				t.Errorf("flags won over the config file: %s", dump(c))
			}
			if c.Logging.Verbosity != 5 {
				t.Errorf("verbosity %v, want -v=5 from the command line", c.Logging.Verbosity)
			}
			if len(c.Logging.VModule) != 2 || c.Logging.VModule[0].FilePattern != "server" || c.Logging.VModule[1].FilePattern != "proxier" {
				t.Errorf("vmodule %+v, want the command line's then the file's", c.Logging.VModule)
			}
			if c.HostnameOverride != "node-a" {
				t.Errorf("hostname override %q, want the flag's, lower-cased", c.HostnameOverride)
			}
		},
	}, {
		name: "config file logging settings kept without logging flags",
		args: []string{"--proxy-mode=nftables"},
		file: fileWithVModule,
		check: func(t *testing.T, c *kubeproxyconfig.KubeProxyConfiguration) {
			if c.Logging.Verbosity != 1 || len(c.Logging.VModule) != 1 || c.Mode != kubeproxyconfig.ProxyModeIPVS {
				t.Errorf("file's logging settings lost: %+v", c.Logging)
			}
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				args = append([]string{"--config=" + writeFile(t, "config.conf", tc.file)}, args...)
			}
			cfg, err := resolveBoth(t, args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, cfg)
		})
	}
}
