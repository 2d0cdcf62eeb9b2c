package forkconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// fileField is one of the fork's fields in a KubeProxyConfiguration file.
type fileField struct {
	section, key string
	// flag is the same setting's command-line flag: written as a key, it is a near miss too.
	flag string
	read func(cfg *Config, v any, path *field.Path) field.ErrorList
	// get is the setting's value, to compare what two files say.
	get func(cfg *Config) any
}

var fileFields = []fileField{
	{"ipvs", "bindLoadBalancerIngress", FlagBindLBIngress, readBool(func(c *Config, b bool) { c.BindLoadBalancerIngress = b }),
		func(c *Config) any { return c.BindLoadBalancerIngress }},
	{"ipvs", "protectedCIDRs", FlagProtectedCIDRs, readCIDRs(func(c *Config) *[]string { return &c.ProtectedCIDRs }),
		func(c *Config) any { return c.ProtectedCIDRs }},
	{"ipvs", "externalIPCIDRs", FlagExternalIPCIDRs, readCIDRs(func(c *Config) *[]string { return &c.ExternalIPCIDRs }),
		func(c *Config) any { return c.ExternalIPCIDRs }},
	{"iptables", "masqueradeRandomFully", FlagMasqueradeRandomFully, readRandomFully,
		func(c *Config) any { return c.MasqueradeRandomFully }},
}

func isForkSection(key string) bool { return key == "ipvs" || key == "iptables" }

var separators = strings.NewReplacer("-", "", "_", "")

func lookupField(section, key string) *fileField {
	for i := range fileFields {
		if f := &fileFields[i]; f.section == section && f.key == key {
			return f
		}
	}
	return nil
}

// nearMiss is the fork field a key not read as one was probably meant to be: the same name in
// another case, with dashes or underscores, or the flag's name. Upstream's decoder is
// case-sensitive and its lenient fallback drops unknown keys, so such a key would otherwise
// leave the setting at its default without a word.
func nearMiss(key string) *fileField {
	norm := func(s string) string { return strings.ToLower(separators.Replace(s)) }
	k := norm(key)
	for i := range fileFields {
		if f := &fileFields[i]; k == norm(f.key) || k == norm(f.flag) {
			return f
		}
	}
	return nil
}

// UnreadableError is FromFile's error for a file that is neither YAML nor JSON, so that it cannot
// tell which of the fork's fields the file sets. What is wrong with such a file is upstream's
// decoder's to say; should that decoder read it anyway, the error must stop kube-proxy, or the
// fork's settings in the file would be lost.
type UnreadableError struct{ Err error }

func (e *UnreadableError) Error() string {
	return "cannot read kube-proxy-ipvs's settings from the config file: " + e.Err.Error()
}

func (e *UnreadableError) Unwrap() error { return e.Err }

// FromFile reads the fork's fields from a KubeProxyConfiguration file (YAML or JSON) into cfg,
// and returns the file without them, for upstream's strict decoder. A file without fork
// fields is returned unchanged, so upstream's decoding of it is exactly upstream's.
//
// It fails, leaving cfg alone, on anything that would make a fork setting silently differ from
// what the file says: a value of the wrong type, a key given twice (upstream's decoders keep one
// of the two), a near miss of a key (another case, the flag's name, the wrong section), or an
// ipvs or iptables section given twice (one of them is dropped). A null value leaves the
// setting unset, as it does for upstream's fields. A file it cannot parse at all gives an
// *UnreadableError and comes back unchanged.
func FromFile(data []byte, cfg *Config) ([]byte, error) {
	out, _, err := ReadConfigFile(data, cfg)
	return out, err
}

// ReadConfigFile is FromFile that also returns the fields the file sets, as "section.key".
func ReadConfigFile(data []byte, cfg *Config) ([]byte, []string, error) {
	doc, errs, err := parseFile(data, root)
	if err != nil {
		return data, nil, &UnreadableError{Err: err}
	}
	read := *cfg
	r := fileReader{cfg: &read, errs: errs, root: root}
	r.document(doc)
	if len(r.errs) > 0 {
		return nil, nil, r.errs.ToAggregate()
	}
	if len(r.set) == 0 {
		return data, nil, nil
	}
	*cfg = read
	var out bytes.Buffer
	writeJSON(&out, r.stripped(doc))
	return out.Bytes(), r.set, nil
}

var root = field.NewPath("KubeProxyConfiguration")

// parseFile parses data the way upstream's decoder does: as JSON when it starts with '{', as
// YAML 1.1 (sigs.k8s.io/yaml, the same parser) otherwise, so that both read the same values.
// Objects keep repeated keys. A YAML file's repeated keys are lost in its conversion to JSON,
// so those that matter to the fork are reported here.
func parseFile(data []byte, root *field.Path) (any, field.ErrorList, error) {
	if utilyaml.IsJSONBuffer(data) {
		doc, err := parseJSON(data)
		return doc, nil, err
	}
	converted, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, nil, err
	}
	doc, err := parseJSON(converted)
	if err != nil {
		return nil, nil, err
	}
	return doc, repeatedYAMLKeys(data, root), nil
}

// repeatedKey is how go.yaml.in/yaml/v2's strict mode reports a repeated key (with the line of
// its second value). That library is sigs.k8s.io/yaml's parser and the only one that sees the
// repeats. It is only an indirect dependency of this module, used through sigs.k8s.io/yaml, so
// its error message is what is read here; a message of another form fails the read.
var repeatedKey = regexp.MustCompile(`^line (\d+): key (.*) already set in map$`)

// repeatedYAMLKeys reports the repeated keys that could hide or replace a fork setting: the
// fork's keys and its sections, wherever they are in the file (the parser says on which line,
// not under which parent). Other repeats are upstream's strict decoder's to report.
func repeatedYAMLKeys(data []byte, root *field.Path) field.ErrorList {
	_, err := yaml.YAMLToJSONStrict(data)
	if err == nil {
		return nil
	}
	const header = "yaml: unmarshal errors:\n"
	msg := err.Error()
	if !strings.HasPrefix(msg, header) {
		// Lenient parsing succeeded, so strictness failed, in a way this code does not know:
		// it cannot tell whether a fork key was repeated.
		return field.ErrorList{field.InternalError(root, fmt.Errorf("checking the file for repeated keys: %w", err))}
	}
	var errs field.ErrorList
	for _, line := range strings.Split(strings.TrimPrefix(msg, header), "\n") {
		m := repeatedKey.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			errs = append(errs, field.InternalError(root, fmt.Errorf("checking the file for repeated keys: %s", strings.TrimSpace(line))))
			continue
		}
		key, err := strconv.Unquote(m[2])
		if err != nil {
			continue // not a string key, so none of the fork's
		}
		detail := fmt.Sprintf("given more than once (another value at line %s): only one would be read", m[1])
		switch {
		case isForkSection(key):
			errs = append(errs, field.Forbidden(root.Child(key), detail+", with the kube-proxy-ipvs settings in it"))
		default:
			for _, f := range fileFields {
				if f.key == key {
					errs = append(errs, field.Forbidden(root.Child(f.section, key), detail))
				}
			}
		}
	}
	return errs
}

// member is one key of a JSON object; object keeps them in file order, repeats included.
type member struct {
	key   string
	value any
}

type object []member

// parseJSON decodes a JSON document into object, []any, string, json.Number, bool or nil.
func parseJSON(data []byte) (any, error) {
	if !json.Valid(data) {
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			return nil, err
		}
		return nil, errors.New("invalid JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return readJSON(dec)
}

func readJSON(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		obj := object{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			key, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("object key %v is not a string", k)
			}
			v, err := readJSON(dec)
			if err != nil {
				return nil, err
			}
			obj = append(obj, member{key, v})
		}
		_, err := dec.Token()
		return obj, err
	case json.Delim('['):
		list := []any{}
		for dec.More() {
			v, err := readJSON(dec)
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
		_, err := dec.Token()
		return list, err
	}
	return tok, nil
}

func writeJSON(buf *bytes.Buffer, v any) {
	switch v := v.(type) {
	case object:
		buf.WriteByte('{')
		for i, m := range v {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeJSON(buf, m.key)
			buf.WriteByte(':')
			writeJSON(buf, m.value)
		}
		buf.WriteByte('}')
	case []any:
		buf.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeJSON(buf, e)
		}
		buf.WriteByte(']')
	case json.Number:
		buf.WriteString(string(v))
	default: // string, bool, nil: json.Marshal cannot fail on them
		b, _ := json.Marshal(v)
		buf.Write(b)
	}
}

// fileReader walks a parsed file, reading the fork's fields into cfg and collecting what is
// wrong with them.
type fileReader struct {
	cfg  *Config
	errs field.ErrorList
	root *field.Path
	// set is the fork fields read, as "section.key".
	set []string
	// settingsOnly: the file is --fork-config's, where any other key is an error.
	settingsOnly bool
}

func (r *fileReader) document(doc any) {
	top, ok := doc.(object)
	if !ok {
		if r.settingsOnly && doc != nil { // an empty file sets nothing
			r.errs = append(r.errs, field.TypeInvalid(r.root, shown(doc), "must be a map with the sections ipvs and iptables, got "+kindOf(doc)))
		}
		r.scan(doc, r.root)
		return
	}
	seen := map[string]bool{}
	for _, m := range top {
		path := r.root.Child(m.key)
		if isForkSection(m.key) {
			if seen[m.key] {
				r.errs = append(r.errs, field.Forbidden(path, "given more than once: only one would be read, with the kube-proxy-ipvs settings in it"))
			}
			seen[m.key] = true
			if section, ok := m.value.(object); ok {
				r.section(m.key, section, path)
				continue
			}
		}
		r.notSetting(m.key, path)
		r.key(m.key, "", path)
		r.scan(m.value, path)
	}
}

// notSetting reports, in a --fork-config file, a key that is none of the fork's settings:
// nothing reads it, so a setting meant there would silently keep its default.
func (r *fileReader) notSetting(key string, path *field.Path) {
	if r.settingsOnly && nearMiss(key) == nil {
		r.errs = append(r.errs, field.NotSupported(path, key, settingKeys()))
	}
}

// settingKeys are the fork's fields as "section.key".
func settingKeys() []string {
	keys := make([]string, len(fileFields))
	for i, f := range fileFields {
		keys[i] = f.section + "." + f.key
	}
	return keys
}

func (r *fileReader) section(name string, section object, path *field.Path) {
	seen := map[string]bool{}
	for _, m := range section {
		p := path.Child(m.key)
		if f := lookupField(name, m.key); f != nil {
			if seen[m.key] {
				r.errs = append(r.errs, field.Forbidden(p, "given more than once: only one would be read"))
			}
			seen[m.key] = true
			r.set = append(r.set, name+"."+m.key)
			r.errs = append(r.errs, f.read(r.cfg, m.value, p)...)
			continue
		}
		r.notSetting(m.key, p)
		r.key(m.key, name, p)
		r.scan(m.value, p)
	}
}

// scan looks for near misses of the fork's keys anywhere below an upstream field.
func (r *fileReader) scan(v any, path *field.Path) {
	switch v := v.(type) {
	case object:
		for _, m := range v {
			p := path.Child(m.key)
			r.key(m.key, "", p)
			r.scan(m.value, p)
		}
	case []any:
		for i, e := range v {
			r.scan(e, path.Index(i))
		}
	}
}

// key reports a key that is not read as a fork field but looks meant as one; section is the
// fork section the key is in, if any.
func (r *fileReader) key(key, section string, path *field.Path) {
	f := nearMiss(key)
	if f == nil {
		return
	}
	want := f.section + "." + f.key
	if section == f.section {
		want = f.key
	}
	r.errs = append(r.errs, field.Forbidden(path, fmt.Sprintf("not a field kube-proxy-ipvs reads: did you mean %s?", want)))
}

// stripped is doc without the fork's fields.
func (r *fileReader) stripped(doc any) any {
	top := doc.(object) // set is only filled below a top-level object
	out := make(object, 0, len(top))
	for _, m := range top {
		if section, ok := m.value.(object); ok && isForkSection(m.key) {
			kept := object{}
			for _, sm := range section {
				if lookupField(m.key, sm.key) == nil {
					kept = append(kept, sm)
				}
			}
			m.value = kept
		}
		out = append(out, m)
	}
	return out
}

func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "a list"
	default:
		return "a map"
	}
}

// shown is a value as an error message shows it: scalars as they are, lists and maps not at all.
func shown(v any) any {
	switch v.(type) {
	case object, []any:
		return field.OmitValueType{}
	}
	return v
}

func typeError(path *field.Path, v any, want string) field.ErrorList {
	return field.ErrorList{field.TypeInvalid(path, shown(v), fmt.Sprintf("must be %s, got %s", want, kindOf(v)))}
}

func readBool(set func(*Config, bool)) func(*Config, any, *field.Path) field.ErrorList {
	return func(c *Config, v any, path *field.Path) field.ErrorList {
		switch v := v.(type) {
		case nil:
			return nil
		case bool:
			set(c, v)
			return nil
		}
		return typeError(path, v, "true or false")
	}
}

func readCIDRs(list func(*Config) *[]string) func(*Config, any, *field.Path) field.ErrorList {
	return func(c *Config, v any, path *field.Path) field.ErrorList {
		switch v := v.(type) {
		case nil:
			return nil
		case []any:
			var errs field.ErrorList
			cidrs := make([]string, 0, len(v))
			for i, e := range v {
				s, ok := e.(string)
				if !ok {
					errs = append(errs, typeError(path.Index(i), e, "a CIDR")...)
					continue
				}
				cidrs = append(cidrs, s)
			}
			if len(errs) == 0 {
				*list(c) = cidrs
			}
			return errs
		}
		return typeError(path, v, "a list of CIDRs")
	}
}

func readRandomFully(c *Config, v any, path *field.Path) field.ErrorList {
	switch v := v.(type) {
	case nil:
		return nil
	case string:
		c.MasqueradeRandomFully = RandomFully(v)
		return nil
	}
	return typeError(path, v, fmt.Sprintf("%s, %s or %s", RandomFullyAuto, RandomFullyAlways, RandomFullyNever))
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
