package forkconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// FuzzFromFile checks FromFile on any input (seeds in testdata/fuzz/FuzzFromFile): it never
// panics; an unreadable file comes back unchanged; a failure changes no setting; and a success
// applied every fork field of the file, left no near miss of one unreported, hands upstream
// its fields unchanged and none of the fork's.
//
// The checks read the files with plain maps (repeats collapse), not with FromFile's reader.
func FuzzFromFile(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := Default()
		out, err := FromFile(data, &cfg)
		if err != nil {
			if !reflect.DeepEqual(cfg, Default()) {
				t.Fatalf("failed (%v) but changed the settings: %+v", err, cfg)
			}
			var unreadable *UnreadableError
			if errors.As(err, &unreadable) && !bytes.Equal(out, data) {
				t.Fatalf("unreadable (%v), but the file did not come back unchanged: %q", err, out)
			}
			return
		}
		in, ok := oracleParse(data)
		if !ok {
			t.Fatalf("FromFile read a file that neither encoding/json nor sigs.k8s.io/yaml reads")
		}
		if name, found := oracleNearMiss(in, ""); found {
			t.Fatalf("near miss %s of a fork field was not reported", name)
		}
		if repeated := oracleRepeats(data); repeated != "" {
			t.Fatalf("repeated key %s was not reported", repeated)
		}
		want := Default()
		anyFork := false
		if top, ok := in.(map[string]any); ok {
			for _, ff := range fileFields {
				section, _ := top[ff.section].(map[string]any)
				v, present := section[ff.key]
				if !present {
					continue
				}
				anyFork = true
				oracleApply(t, &want, ff.key, v)
				delete(section, ff.key)
			}
		}
		if !reflect.DeepEqual(cfg, want) {
			t.Fatalf("settings %+v, the file says %+v", cfg, want)
		}
		if !anyFork {
			if !bytes.Equal(out, data) {
				t.Fatalf("a file without fork fields changed: %q", out)
			}
			return
		}
		upstream, ok := oracleParse(out)
		if !ok {
			t.Fatalf("the upstream part is not readable: %q", out)
		}
		if name, found := oracleNearMiss(upstream, ""); found {
			t.Fatalf("fork key %s left in the upstream part %q", name, out)
		}
		if !reflect.DeepEqual(upstream, in) {
			t.Fatalf("upstream's fields changed:\n  file  %#v\n  upstream part %#v", in, upstream)
		}
	})
}

// oracleParse reads a file as upstream's decoder does, into plain maps.
func oracleParse(data []byte) (any, bool) {
	var v any
	if utilyaml.IsJSONBuffer(data) {
		return v, json.Unmarshal(data, &v) == nil
	}
	return v, yaml.Unmarshal(data, &v) == nil
}

// oracleNearMiss finds a key, anywhere, that spells a fork field or its flag, in any case, but
// is not that field in its section.
func oracleNearMiss(v any, path string) (string, bool) {
	fold := func(s string) string { return strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(s)) }
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			p := path + "." + k
			for _, ff := range fileFields {
				if (fold(k) == fold(ff.key) || fold(k) == fold(ff.flag)) && p != "."+ff.section+"."+ff.key {
					return p, true
				}
			}
			if name, found := oracleNearMiss(e, p); found {
				return name, true
			}
		}
	case []any:
		for _, e := range v {
			if name, found := oracleNearMiss(e, path+"[]"); found {
				return name, true
			}
		}
	}
	return "", false
}

// oracleRepeats names a repeated fork key or section that sigs.k8s.io/yaml's strict mode finds.
func oracleRepeats(data []byte) string {
	_, err := yaml.YAMLToJSONStrict(data)
	if err == nil || !strings.Contains(err.Error(), "already set in map") {
		return ""
	}
	for _, name := range []string{"ipvs", "iptables", "bindLoadBalancerIngress", "protectedCIDRs", "externalIPCIDRs", "masqueradeRandomFully"} {
		if strings.Contains(err.Error(), `key "`+name+`" already set`) {
			return name
		}
	}
	return ""
}

// oracleApply sets the setting named key from a well-typed value; FromFile returned no error, so
// any other type is a failure.
func oracleApply(t *testing.T, c *Config, key string, v any) {
	t.Helper()
	if v == nil {
		return
	}
	cidrs := func() []string {
		list, ok := v.([]any)
		if !ok {
			t.Fatalf("%s: %#v accepted as a list", key, v)
		}
		out := []string{}
		for _, e := range list {
			s, ok := e.(string)
			if !ok {
				t.Fatalf("%s: %#v accepted as a CIDR", key, e)
			}
			out = append(out, s)
		}
		return out
	}
	switch key {
	case "bindLoadBalancerIngress":
		b, ok := v.(bool)
		if !ok {
			t.Fatalf("%s: %#v accepted as a boolean", key, v)
		}
		c.BindLoadBalancerIngress = b
	case "protectedCIDRs":
		c.ProtectedCIDRs = cidrs()
	case "externalIPCIDRs":
		c.ExternalIPCIDRs = cidrs()
	case "masqueradeRandomFully":
		s, ok := v.(string)
		if !ok {
			t.Fatalf("%s: %#v accepted as a string", key, v)
		}
		c.MasqueradeRandomFully = RandomFully(s)
	}
}
