package app

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/klog/v2"
	"k8s.io/kube-proxy/config/v1alpha1"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	proxyconfigscheme "k8s.io/kubernetes/pkg/proxy/apis/config/scheme"
	kubeproxyconfigv1alpha1 "k8s.io/kubernetes/pkg/proxy/apis/config/v1alpha1"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/forkconfig"
)

// defaultConfig is the internal configuration with upstream's v1alpha1 defaults applied.
func defaultConfig() *kubeproxyconfig.KubeProxyConfiguration {
	external := &v1alpha1.KubeProxyConfiguration{}
	proxyconfigscheme.Scheme.Default(external)
	internal, err := proxyconfigscheme.Scheme.ConvertToVersion(external, kubeproxyconfig.SchemeGroupVersion)
	if err != nil {
		// The scheme is compiled in; a failure here is a programming error.
		panic(fmt.Sprintf("converting the default configuration: %v", err))
	}
	return internal.(*kubeproxyconfig.KubeProxyConfiguration)
}

// decodeConfig decodes a KubeProxyConfiguration file the way upstream does: strictly first, and
// if the only problem is strictness (an unknown or duplicate field), leniently with a warning, so
// a file written for a newer or older kube-proxy still loads.
func decodeConfig(data []byte) (*kubeproxyconfig.KubeProxyConfiguration, error) {
	obj, gvk, err := proxyconfigscheme.Codecs.UniversalDecoder().Decode(data, nil, nil)
	if err != nil {
		if !runtime.IsStrictDecodingError(err) {
			return nil, fmt.Errorf("failed to decode: %w", err)
		}
		lenient, lerr := lenientCodecs()
		if lerr != nil {
			return nil, lerr
		}
		var lenientErr error
		obj, gvk, lenientErr = lenient.UniversalDecoder().Decode(data, nil, nil)
		if lenientErr != nil {
			return nil, fmt.Errorf("failed lenient decoding: %w", err)
		}
		klog.InfoS("Using lenient decoding as strict decoding failed", "err", err)
	}
	cfg, ok := obj.(*kubeproxyconfig.KubeProxyConfiguration)
	if !ok {
		return nil, fmt.Errorf("got unexpected config type: %v", gvk)
	}
	return cfg, nil
}

// lenientCodecs is a codec factory knowing only v1alpha1, with strict decoding off.
func lenientCodecs() (*serializer.CodecFactory, error) {
	scheme := runtime.NewScheme()
	if err := kubeproxyconfig.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("building the lenient scheme: %w", err)
	}
	if err := kubeproxyconfigv1alpha1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("building the lenient scheme: %w", err)
	}
	codecs := serializer.NewCodecFactory(scheme, serializer.DisableStrict)
	return &codecs, nil
}

// loadConfigFileWithFork reads a config file: the fork's fields into a forkconfig.Config
// (defaults for those not set), the rest through upstream's decoder; then the --fork-config
// file, if given, over the fork's fields.
func loadConfigFileWithFork(path, settingsPath string) (*kubeproxyconfig.KubeProxyConfiguration, forkconfig.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, forkconfig.Default(), err
	}
	cfg, fork, inConfig, err := decodeConfigWithFork(data, decodeConfig)
	if err != nil {
		return nil, fork, err
	}
	fork, err = readSettingsFile(settingsPath, fork, inConfig)
	return cfg, fork, err
}

// readSettingsFile applies the --fork-config file at path (none when empty) over fork.
func readSettingsFile(path string, fork forkconfig.Config, inConfig []string) (forkconfig.Config, error) {
	if path == "" {
		return fork, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		// A missing file is an error, not "no settings": the DaemonSet names it, so its absence
		// means a mount went missing, and the settings in it would be lost.
		return fork, fmt.Errorf("--%s: %w", forkconfig.FlagSettingsFile, err)
	}
	read, err := forkconfig.ReadSettingsFile(data, fork, inConfig)
	if err != nil {
		return fork, fmt.Errorf("--%s %s: %w", forkconfig.FlagSettingsFile, path, err)
	}
	klog.InfoS("Read kube-proxy-ipvs settings", "file", path)
	return read, nil
}

// decodeConfigWithFork splits a config file's contents between the fork's reader and decode
// (upstream's decoder; the tests pass another), and says which fork fields the file set. Any
// problem with a fork field fails the load: a setting that silently kept its default could
// leave an address unprotected.
func decodeConfigWithFork(data []byte, decode func([]byte) (*kubeproxyconfig.KubeProxyConfiguration, error)) (*kubeproxyconfig.KubeProxyConfiguration, forkconfig.Config, []string, error) {
	fork := forkconfig.Default()
	upstreamPart, set, err := forkconfig.ReadConfigFile(data, &fork)
	var unreadable *forkconfig.UnreadableError
	if errors.As(err, &unreadable) {
		// Upstream's decoder says what is wrong with the file, as it would without the fork. It
		// parses the file as the fork does, so it fails too; were it ever to read the file, the
		// fork's settings in it would be lost, and that is an error as well.
		if _, uerr := decode(data); uerr != nil {
			return nil, fork, nil, uerr
		}
		return nil, fork, nil, err
	}
	if err != nil {
		return nil, fork, nil, err
	}
	cfg, err := decode(upstreamPart)
	return cfg, fork, set, err
}

// encodeConfig renders cfg as v1alpha1 YAML, as --write-config-to writes it.
func encodeConfig(cfg *kubeproxyconfig.KubeProxyConfiguration) ([]byte, error) {
	info, ok := runtime.SerializerInfoForMediaType(proxyconfigscheme.Codecs.SupportedMediaTypes(), runtime.ContentTypeYAML)
	if !ok {
		return nil, fmt.Errorf("no serializer for %s", runtime.ContentTypeYAML)
	}
	var buf bytes.Buffer
	encoder := proxyconfigscheme.Codecs.EncoderForVersion(info.Serializer, v1alpha1.SchemeGroupVersion)
	if err := encoder.Encode(cfg, &buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeConfigFile(path string, cfg *kubeproxyconfig.KubeProxyConfiguration, fork forkconfig.Config) error {
	data, err := encodeConfig(cfg)
	if err != nil {
		return err
	}
	if data, err = forkconfig.AddToFile(data, fork); err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return err
	}
	klog.InfoS("Wrote configuration", "file", path)
	return nil
}
