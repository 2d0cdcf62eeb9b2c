package app_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/component-base/configz"
	"k8s.io/klog/v2/textlogger"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	proxyconfigscheme "k8s.io/kubernetes/pkg/proxy/apis/config/scheme"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/cmd/kube-proxy/app"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/forkconfig"
)

// kubeadmWithFork is kubeadm's ipvs file with lines added at the top of its ipvs and iptables
// sections.
func kubeadmWithFork(ipvs, iptables string) string {
	return strings.NewReplacer("\nipvs:\n", "\nipvs:\n"+ipvs, "\niptables:\n", "\niptables:\n"+iptables).Replace(kubeadmIPVS)
}

// completeOurs runs our options' Complete on args, as the command does.
func completeOurs(t *testing.T, args ...string) (*app.Options, error) {
	t.Helper()
	opts := app.NewOptions()
	fs := newFlagSet("ours")
	opts.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parsing %q: %v", args, err)
	}
	return opts, opts.Complete(fs)
}

// badForkFiles are config files whose fork settings are not what they seem. kube-proxy used to
// start with every fork setting at its default from the first four, the address guard off.
var badForkFiles = []struct {
	name, file, want string
}{
	{"bindLoadBalancerIngress as a string", kubeadmWithFork("  bindLoadBalancerIngress: \"false\"\n", ""),
		`KubeProxyConfiguration.ipvs.bindLoadBalancerIngress: Invalid value: "false": must be true or false, got a string`},
	{"protectedCIDRs as a scalar", kubeadmWithFork("  protectedCIDRs: 10.0.0.0/8\n", ""),
		`KubeProxyConfiguration.ipvs.protectedCIDRs: Invalid value: "10.0.0.0/8": must be a list of CIDRs, got a string`},
	{"externalIPCIDRs as a number", kubeadmWithFork("  externalIPCIDRs: 0\n", ""),
		`KubeProxyConfiguration.ipvs.externalIPCIDRs: Invalid value: 0: must be a list of CIDRs, got a number`},
	{"masqueradeRandomFully as a number", kubeadmWithFork("", "  masqueradeRandomFully: 1\n"),
		`KubeProxyConfiguration.iptables.masqueradeRandomFully: Invalid value: 1: must be auto, always or never, got a number`},
	{"repeated key", kubeadmWithFork("  protectedCIDRs: [10.0.0.0/8]\n  protectedCIDRs: []\n", ""),
		`KubeProxyConfiguration.ipvs.protectedCIDRs: Forbidden: given more than once`},
	{"repeated section", kubeadmWithFork("  protectedCIDRs: [10.0.0.0/8]\n", "") + "ipvs:\n  scheduler: rr\n",
		`KubeProxyConfiguration.ipvs: Forbidden: given more than once`},
	{"lower case", kubeadmWithFork("  protectedcidrs: [10.0.0.0/8]\n", ""),
		`KubeProxyConfiguration.ipvs.protectedcidrs: Forbidden: not a field kube-proxy-ipvs reads: did you mean protectedCIDRs?`},
	{"capitalised", kubeadmWithFork("  ProtectedCIDRs: [10.0.0.0/8]\n", ""),
		`KubeProxyConfiguration.ipvs.ProtectedCIDRs: Forbidden: not a field kube-proxy-ipvs reads: did you mean protectedCIDRs?`},
}

// TestForkConfigFileFailsClosed: Complete fails on a bad fork setting, naming it, rather than
// starting with the default.
func TestForkConfigFileFailsClosed(t *testing.T) {
	for _, tc := range badForkFiles {
		t.Run(tc.name, func(t *testing.T) {
			opts, err := completeOurs(t, "--config="+writeFile(t, "config.conf", tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Complete: %v, want an error with %q; fork settings %+v", err, tc.want, opts.ForkConfig())
			}
		})
	}
}

// TestForkConfigCommandFailsClosed runs the command on a bad file: it must return the error
// rather than go on. (--write-config-to keeps a command that goes on from touching the host:
// it writes the resolved configuration and returns.)
func TestForkConfigCommandFailsClosed(t *testing.T) {
	written := filepath.Join(t.TempDir(), "written.yaml")
	cmd := app.NewProxyCommand()
	cmd.SetArgs([]string{"--config=" + writeFile(t, "config.conf", badForkFiles[1].file), "--write-config-to=" + written})
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	err := cmd.Execute()
	if err == nil || !strings.Contains(err.Error(), badForkFiles[1].want) {
		t.Errorf("command returned %v, want an error with %q", err, badForkFiles[1].want)
	}
	if data, err := os.ReadFile(written); err == nil {
		t.Errorf("the command went on and wrote:\n%s", data)
	}
}

// TestForkConfigJSONReadAsUpstreamReadsIt: a JSON file is read as JSON, as upstream's decoder
// reads it; the escaped slashes some JSON writers put in CIDRs once hid the fork's settings.
func TestForkConfigJSONReadAsUpstreamReadsIt(t *testing.T) {
	file := strings.Replace(jsonConfig, `"ipvs": {"scheduler": "lc",`,
		`"iptables": {"masqueradeRandomFully": "never"}, "ipvs": {"protectedCIDRs": ["192.0.2.0\/24"], "bindLoadBalancerIngress": false, "scheduler": "lc",`, 1)
	opts, err := completeOurs(t, "--config="+writeFile(t, "config.json", file))
	if err != nil {
		t.Fatal(err)
	}
	want := forkconfig.Config{ProtectedCIDRs: []string{"192.0.2.0/24"}, MasqueradeRandomFully: forkconfig.RandomFullyNever}
	if got := opts.ForkConfig(); !reflect.DeepEqual(got, want) {
		t.Errorf("fork settings %+v, want %+v", got, want)
	}
	if c := opts.Config(); c.IPVS.Scheduler != "lc" || !reflect.DeepEqual(c.IPVS.ExcludeCIDRs, []string{"198.51.100.0/24"}) {
		t.Errorf("upstream's settings not loaded: %s", dump(c))
	}
}

// TestForkConfigSyntaxErrorIsUpstreams: a file that is not YAML fails with upstream's error, as
// before, fork fields or not.
func TestForkConfigSyntaxErrorIsUpstreams(t *testing.T) {
	for _, file := range []string{
		kubeadmWithFork("  protectedCIDRs: [10.0.0.0/8\n", ""),
		kubeadmWithFork("\tprotectedCIDRs: []\n", ""),
		`{"kind": "KubeProxyConfiguration", "ipvs": {"protectedCIDRs": ["10.0.0.0/8"]},}`,
	} {
		_, err := resolveBoth(t, []string{"--config=" + writeFile(t, "config.conf", file)})
		if err == nil || !strings.Contains(err.Error(), "failed to decode") {
			t.Errorf("error %v, want upstream's decoding error", err)
		}
	}
}

// TestForkConfigUnreadableByTheForkOnly: the fork parses a file as upstream's decoder does, so
// both fail on the same files; were upstream's ever to read one the fork could not, the fork's
// settings in it would be lost, and the load must fail.
func TestForkConfigUnreadableByTheForkOnly(t *testing.T) {
	unreadable := []byte("ipvs:\n  protectedCIDRs: [10.0.0.0/8\n")
	upstreamReads := func([]byte) (*kubeproxyconfig.KubeProxyConfiguration, error) {
		return &kubeproxyconfig.KubeProxyConfiguration{}, nil
	}
	_, _, _, err := app.DecodeConfigWithFork(unreadable, upstreamReads)
	var forkErr *forkconfig.UnreadableError
	if !errors.As(err, &forkErr) {
		t.Errorf("upstream's decoder reads what the fork cannot: error %v, want the fork's", err)
	}

	upstreamErr := errors.New("upstream: bad file")
	upstreamFails := func([]byte) (*kubeproxyconfig.KubeProxyConfiguration, error) { return nil, upstreamErr }
	if _, _, _, err := app.DecodeConfigWithFork(unreadable, upstreamFails); err != upstreamErr {
		t.Errorf("error %v, want upstream's", err)
	}
}

// TestForkConfigz reads /configz: upstream's section is upstream's object alone (it decodes
// strictly), and the fork's settings in effect, the file's with a flag over them, are in a
// section of their own.
func TestForkConfigz(t *testing.T) {
	file := kubeadmWithFork("  bindLoadBalancerIngress: false\n  protectedCIDRs: [10.0.0.0/8]\n", "  masqueradeRandomFully: never\n")
	opts, err := completeOurs(t, "--config="+writeFile(t, "config.conf", file), "--ipvs-external-ip-cidrs=192.0.2.0/24")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		configz.Delete(kubeproxyconfig.GroupName)
		configz.Delete(forkconfig.ConfigzName)
	})
	if err := app.RegisterConfigz(opts.Config(), opts.ForkConfig()); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	configz.InstallHandler(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/configz", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/configz: %d %s", rec.Code, rec.Body)
	}
	t.Logf("/configz: %s", rec.Body)
	var sections map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &sections); err != nil {
		t.Fatal(err)
	}

	obj, _, err := proxyconfigscheme.Codecs.UniversalDecoder().Decode(sections[kubeproxyconfig.GroupName], nil, nil)
	if err != nil {
		t.Fatalf("upstream's section does not decode strictly: %v", err)
	}
	if c := obj.(*kubeproxyconfig.KubeProxyConfiguration); c.Mode != kubeproxyconfig.ProxyModeIPVS || c.IPVS.Scheduler != "rr" {
		t.Errorf("upstream's section is not the configuration: %s", dump(c))
	}

	var fork map[string]any
	if err := json.Unmarshal(sections[forkconfig.ConfigzName], &fork); err != nil {
		t.Fatalf("fork section %s: %v", sections[forkconfig.ConfigzName], err)
	}
	want := map[string]any{
		"apiVersion": "kube-proxy-ipvs.io/v1alpha1",
		"kind":       "KubeProxyIPVSConfiguration",
		"ipvs": map[string]any{
			"bindLoadBalancerIngress": false,
			"protectedCIDRs":          []any{"10.0.0.0/8"},
			"externalIPCIDRs":         []any{"192.0.2.0/24"},
		},
		"iptables": map[string]any{"masqueradeRandomFully": "never"},
	}
	if !reflect.DeepEqual(fork, want) {
		t.Errorf("fork section %s, want %v", sections[forkconfig.ConfigzName], want)
	}
	if len(sections) != 2 {
		t.Errorf("sections %v, want upstream's and the fork's", reflect.ValueOf(sections).MapKeys())
	}
}

// TestForkSettingsLogged: the settings in effect are one log line.
func TestForkSettingsLogged(t *testing.T) {
	var buf bytes.Buffer
	logger := textlogger.NewLogger(textlogger.NewConfig(textlogger.Output(&buf)))
	app.LogForkConfig(logger, forkconfig.Config{BindLoadBalancerIngress: false, ProtectedCIDRs: []string{"10.0.0.0/8", "192.0.2.1/32"},
		MasqueradeRandomFully: forkconfig.RandomFullyAuto})
	line := buf.String()
	want := `"kube-proxy-ipvs settings" bindLoadBalancerIngress=false protectedCIDRs=["10.0.0.0/8","192.0.2.1/32"] externalIPCIDRs=[] masqueradeRandomFully="auto"` + "\n"
	if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, want) {
		t.Errorf("logged %q, want one line ending %q", line, want)
	}
}

// TestForkSettingsFileSurvivesARegeneratedConfig: kubeadm regenerates config.conf without the
// fork's fields; the --fork-config file still gives them, flags still win, and a missing file
// (a lost mount) stops kube-proxy instead of starting it with the defaults.
func TestForkSettingsFileSurvivesARegeneratedConfig(t *testing.T) {
	settings := writeFile(t, "settings.yaml", "ipvs:\n  protectedCIDRs: [192.0.2.10/32]\niptables:\n  masqueradeRandomFully: never\n")
	regenerated := writeFile(t, "config.conf", kubeadmIPVS)
	want := forkconfig.Config{BindLoadBalancerIngress: true, ProtectedCIDRs: []string{"192.0.2.10/32"}, MasqueradeRandomFully: forkconfig.RandomFullyNever}
	for _, args := range [][]string{
		{"--config=" + regenerated, "--fork-config=" + settings},
		{"--fork-config=" + settings},
	} {
		opts, err := completeOurs(t, args...)
		if err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		if got := opts.ForkConfig(); !reflect.DeepEqual(got, want) {
			t.Errorf("%q: fork settings %+v, want %+v", args, got, want)
		}
	}
	opts, err := completeOurs(t, "--config="+regenerated, "--fork-config="+settings, "--masquerade-random-fully=always")
	if err != nil || opts.ForkConfig().MasqueradeRandomFully != forkconfig.RandomFullyAlways {
		t.Errorf("a flag did not win over the settings file: %v, %+v", err, opts.ForkConfig())
	}
	missing := filepath.Join(t.TempDir(), "absent.yaml")
	if _, err := completeOurs(t, "--config="+regenerated, "--fork-config="+missing); err == nil || !strings.Contains(err.Error(), "--fork-config: open "+missing) {
		t.Errorf("missing settings file: %v, want an error naming it", err)
	}
	conflicting := writeFile(t, "config.conf", kubeadmWithFork("", "  masqueradeRandomFully: always\n"))
	if _, err := completeOurs(t, "--config="+conflicting, "--fork-config="+settings); err == nil || !strings.Contains(err.Error(), "iptables.masqueradeRandomFully") {
		t.Errorf("files disagreeing: %v, want an error naming the field", err)
	}
}
