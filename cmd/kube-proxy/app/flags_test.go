package app_test

import (
	"sort"
	"testing"

	"github.com/spf13/pflag"

	upstream "k8s.io/kubernetes/cmd/kube-proxy/app"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/cmd/kube-proxy/app"
)

// forkFlagNames are the flags kube-proxy-ipvs adds to upstream's set. Each fork feature adds
// its flags here explicitly, so an accidental rename or a new upstream flag is caught.
var forkFlagNames = map[string]bool{
	"ipvs-bind-lb-ingress":    true, // LoadBalancer ingress binding (README: LoadBalancer ingress binding)
	"ipvs-protected-cidrs":    true, // address guard
	"ipvs-external-ip-cidrs":  true, // address guard
	"masquerade-random-fully": true, // --random-fully switch
	"fork-config":             true, // the fork's settings in a file kubeadm does not regenerate
}

// allFlags is every flag the command accepts once cobra has merged the global flag sets
// (--version and the logging flags included).
func allFlags(fs *pflag.FlagSet) map[string]*pflag.Flag {
	out := map[string]*pflag.Flag{}
	fs.VisitAll(func(f *pflag.Flag) { out[f.Name] = f })
	return out
}

func commandFlags(t *testing.T, ours bool) map[string]*pflag.Flag {
	t.Helper()
	if ours {
		cmd := app.NewProxyCommand()
		return allFlags(cmd.Flags())
	}
	cmd := upstream.NewProxyCommand()
	return allFlags(cmd.Flags())
}

// TestFlagsMatchUpstream checks that every flag of upstream kube-proxy v1.37.2 exists in ours
// with the same type, default, deprecation and shorthand, and that ours adds only the listed
// fork flags.
func TestFlagsMatchUpstream(t *testing.T) {
	up := commandFlags(t, false)
	ours := commandFlags(t, true)
	if len(up) < 50 {
		t.Fatalf("upstream flag set looks incomplete: %d flags", len(up))
	}
	names := make([]string, 0, len(up))
	for n := range up {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		u := up[name]
		o, ok := ours[name]
		if !ok {
			t.Errorf("flag --%s of upstream is missing", name)
			continue
		}
		if u.Value.Type() != o.Value.Type() {
			t.Errorf("flag --%s: type %q, upstream %q", name, o.Value.Type(), u.Value.Type())
		}
		if u.DefValue != o.DefValue {
			t.Errorf("flag --%s: default %q, upstream %q", name, o.DefValue, u.DefValue)
		}
		if u.Deprecated != o.Deprecated {
			t.Errorf("flag --%s: deprecation %q, upstream %q", name, o.Deprecated, u.Deprecated)
		}
		if u.Shorthand != o.Shorthand || u.NoOptDefVal != o.NoOptDefVal {
			t.Errorf("flag --%s: shorthand/no-opt default %q/%q, upstream %q/%q", name, o.Shorthand, o.NoOptDefVal, u.Shorthand, u.NoOptDefVal)
		}
	}
	for name := range ours {
		if _, ok := up[name]; !ok && !forkFlagNames[name] {
			t.Errorf("flag --%s is not upstream's and not listed in forkFlagNames", name)
		}
	}
	for name := range forkFlagNames {
		if _, ok := ours[name]; !ok {
			t.Errorf("fork flag --%s is listed but not registered", name)
		}
	}
}

// TestUpstreamOptionsFlagsCovered checks the flag set upstream's options register directly
// (NewOptions().AddFlags), independently of what cobra merges in.
func TestUpstreamOptionsFlagsCovered(t *testing.T) {
	upFS := pflag.NewFlagSet("upstream", pflag.ContinueOnError)
	upstream.NewOptions().AddFlags(upFS)
	ourFS := pflag.NewFlagSet("ours", pflag.ContinueOnError)
	app.NewOptions().AddFlags(ourFS)
	upFS.VisitAll(func(u *pflag.Flag) {
		o := ourFS.Lookup(u.Name)
		if o == nil {
			t.Errorf("flag --%s missing from Options.AddFlags", u.Name)
			return
		}
		if o.Value.Type() != u.Value.Type() || o.DefValue != u.DefValue || o.Deprecated != u.Deprecated {
			t.Errorf("flag --%s: (%s, %q, %q), upstream (%s, %q, %q)", u.Name, o.Value.Type(), o.DefValue, o.Deprecated, u.Value.Type(), u.DefValue, u.Deprecated)
		}
	})
}
