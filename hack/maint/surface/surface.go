// Package surface writes down what an operator sees of upstream kube-proxy at the vendored
// release: its flags (name, type, default, deprecation), the fields of its config file
// (KubeProxyConfiguration v1alpha1, as JSON paths with their Go types), the defaults upstream fills
// into an empty config file, and the feature gates that concern Services and proxies.
//
// testdata/upstream-kube-proxy.txt holds it for the release go.mod requires; TestSurfaceCurrent
// fails when it is stale. hack/bump-upstream.sh rewrites it after a move (go test -run
// TestSurfaceCurrent -args -update) and prints its diff: the new and removed flags, fields,
// defaults and gates a person must look at. The parity tests (cmd/kube-proxy/app:
// TestFlagsMatchUpstream, TestConfigFileMatchesUpstream, TestValidationMatchesUpstream) compare
// ours with the vendored upstream code directly; this file is the human-readable record of what
// changed between two releases.
package surface

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/pflag"

	utilfeature "k8s.io/apiserver/pkg/util/feature"
	kubeproxyconfigv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	upstream "k8s.io/kubernetes/cmd/kube-proxy/app"
	proxyconfigscheme "k8s.io/kubernetes/pkg/proxy/apis/config/scheme"
	"sigs.k8s.io/yaml"
)

// gateRE selects the feature gates listed: those of Services, endpoints and the proxies; notRE
// drops the kubelet's and service accounts' that gateRE's words catch. The full list (a few
// hundred, most for other components) would bury the few that matter in every diff.
var (
	gateRE = regexp.MustCompile(`(?i)proxy|ipvs|nftables|iptables|^service|endpointslice|topologyaware|traffic|conntrack|dualstack|loadbalancer|nodeport|multicidr`)
	notRE  = regexp.MustCompile(`(?i)^kubelet|serviceaccount|interoperability`)
)

// Upstream returns the surface of the vendored upstream kube-proxy, one sorted section per kind.
// Flags named in ignore (a test binary's own, merged into the command from the Go flag set as
// upstream's command merges it) and those starting with "test." are left out.
func Upstream(ignore ...string) (string, error) {
	var b strings.Builder
	b.WriteString("# Upstream kube-proxy as an operator sees it (hack/maint/surface; regenerate: go test ./hack/maint/surface -args -update)\n")

	b.WriteString("\n## flags (name type default [deprecated] [shorthand] [no-opt default])\n")
	var flags []string
	upstream.NewProxyCommand().Flags().VisitAll(func(f *pflag.Flag) {
		if strings.HasPrefix(f.Name, "test.") || slices.Contains(ignore, f.Name) {
			return
		}
		line := fmt.Sprintf("--%s %s %q", f.Name, f.Value.Type(), f.DefValue)
		if f.Deprecated != "" {
			line += fmt.Sprintf(" deprecated=%q", f.Deprecated)
		}
		if f.Shorthand != "" {
			line += " shorthand=" + f.Shorthand
		}
		if f.NoOptDefVal != "" {
			line += fmt.Sprintf(" no-opt=%q", f.NoOptDefVal)
		}
		flags = append(flags, line)
	})
	sort.Strings(flags)
	writeLines(&b, flags)

	b.WriteString("\n## config fields (KubeProxyConfiguration v1alpha1: JSON path, Go type)\n")
	var fields []string
	walkFields(reflect.TypeOf(kubeproxyconfigv1alpha1.KubeProxyConfiguration{}), "", &fields)
	sort.Strings(fields)
	writeLines(&b, fields)

	b.WriteString("\n## defaults (an empty v1alpha1 file after upstream's defaulting)\n")
	cfg := &kubeproxyconfigv1alpha1.KubeProxyConfiguration{}
	proxyconfigscheme.Scheme.Default(cfg)
	y, err := yaml.Marshal(cfg)
	if err != nil {
		return "", err
	}
	b.Write(y)

	b.WriteString("\n## feature gates (those about Services and proxies)\n")
	var gates []string
	for name, spec := range utilfeature.DefaultMutableFeatureGate.GetAll() {
		if n := string(name); gateRE.MatchString(n) && !notRE.MatchString(n) {
			stage := string(spec.PreRelease)
			if stage == "" {
				stage = "GA"
			}
			gates = append(gates, fmt.Sprintf("%s default=%v %s locked=%v", n, spec.Default, stage, spec.LockToDefault))
		}
	}
	sort.Strings(gates)
	writeLines(&b, gates)
	return b.String(), nil
}

func writeLines(b *strings.Builder, lines []string) {
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
}

// walkFields appends "path type" for every leaf field of t, following JSON names; structs that
// marshal as one value (metav1.Duration, which has a custom marshaller) are leaves.
func walkFields(t reflect.Type, prefix string, out *[]string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if name == "" && strings.Contains(opts, "inline") || f.Anonymous && name == "" {
			if ft.Kind() == reflect.Struct {
				walkFields(ft, prefix, out)
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		path := prefix + name
		if ft.Kind() == reflect.Struct && !marshalsItself(ft) {
			walkFields(ft, path+".", out)
			continue
		}
		*out = append(*out, path+" "+f.Type.String())
	}
}

func marshalsItself(t reflect.Type) bool {
	type jsonMarshaler interface{ MarshalJSON() ([]byte, error) }
	m := reflect.TypeOf((*jsonMarshaler)(nil)).Elem()
	return t.Implements(m) || reflect.PointerTo(t).Implements(m)
}
