package forkconfig

import (
	"fmt"
	"reflect"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// FlagSettingsFile names a file that holds only the fork's settings, in the sections they have
// in a KubeProxyConfiguration:
//
//	ipvs:
//	  protectedCIDRs: [192.0.2.10/32]
//	iptables:
//	  masqueradeRandomFully: never
//
// It exists for kubeadm clusters: `kubeadm upgrade` regenerates the kube-proxy ConfigMap's
// config.conf from its typed KubeProxyConfiguration, which has no place for the fork's fields,
// and replaces the whole ConfigMap. A file from a ConfigMap kubeadm does not own
// (kube-system/kube-proxy-ipvs) keeps the settings across upgrades (docs/install.md).
const FlagSettingsFile = "fork-config"

// ReadSettingsFile reads a --fork-config file over base, whose fields in inConfig ("section.key")
// came from the --config file. It fails on anything FromFile fails on, on a key that is not one
// of the fork's settings (nothing else reads this file, so an upstream field or a typo here
// would be lost without a word), and on a setting the two files give different values: which
// of two disagreeing files was meant cannot be guessed.
func ReadSettingsFile(data []byte, base Config, inConfig []string) (Config, error) {
	path := field.NewPath("fork-config")
	doc, errs, err := parseFile(data, path)
	if err != nil {
		return base, fmt.Errorf("cannot parse the file: %w", err)
	}
	read := base
	r := fileReader{cfg: &read, errs: errs, root: path, settingsOnly: true}
	r.document(doc)
	for _, key := range r.set {
		for _, c := range inConfig {
			if c != key {
				continue
			}
			f := lookupField(fieldKey(key))
			if !reflect.DeepEqual(f.get(&base), f.get(&read)) {
				r.errs = append(r.errs, field.Invalid(path.Child(f.section, f.key), shown(f.get(&read)),
					fmt.Sprintf("the --config file sets it to %v: give it in one file", f.get(&base))))
			}
		}
	}
	if len(r.errs) > 0 {
		return base, r.errs.ToAggregate()
	}
	return read, nil
}

// fieldKey splits "section.key".
func fieldKey(s string) (section, key string) {
	for i := range fileFields {
		if f := &fileFields[i]; f.section+"."+f.key == s {
			return f.section, f.key
		}
	}
	return "", s
}
