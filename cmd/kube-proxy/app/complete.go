package app

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	utilfeature "k8s.io/apiserver/pkg/util/feature"
	logsapi "k8s.io/component-base/logs/api/v1"
	metricsfeatures "k8s.io/component-base/metrics/features"
	"k8s.io/klog/v2"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	proxyutil "k8s.io/kubernetes/pkg/proxy/util"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/forkconfig"
)

// Complete resolves the flags and the --config file into one configuration, the way upstream
// kube-proxy does: a config file replaces the flags (except the logging flags given on the
// command line and --hostname-override), then platform defaults and feature gates apply.
func (o *Options) Complete(fs *pflag.FlagSet) error {
	if o.ConfigFile == "" && o.WriteConfigTo == "" {
		o.config.HealthzBindAddress = addressFromPortFlag(o.config.HealthzBindAddress, o.healthzPort)
		o.config.MetricsBindAddress = addressFromPortFlag(o.config.MetricsBindAddress, o.metricsPort)
	}

	if o.ConfigFile != "" {
		cfg, fork, err := loadConfigFileWithFork(o.ConfigFile, o.forkFlags.SettingsFile)
		if err != nil {
			return err
		}
		o.forkConfig = o.forkFlags.Resolve(fs, &fork, true)
		// Logging flags given on the command line win over the file (`--config f -v=5` works).
		if err := copyChangedLoggingFlags(fs, &cfg.Logging); err != nil {
			return err
		}
		o.config = cfg
	} else {
		o.foldFlagsIntoConfig(fs)
		if o.forkFlags.SettingsFile == "" {
			o.forkConfig = o.forkFlags.Resolve(fs, nil, false)
		} else {
			fork, err := readSettingsFile(o.forkFlags.SettingsFile, forkconfig.Default(), nil)
			if err != nil {
				return err
			}
			o.forkConfig = o.forkFlags.Resolve(fs, &fork, true)
		}
	}

	applyPlatformDefaults(o.config)

	if o.hostnameOverride != "" {
		name := strings.TrimSpace(o.hostnameOverride)
		if name == "" {
			return fmt.Errorf("empty hostname-override is invalid")
		}
		o.config.HostnameOverride = strings.ToLower(name)
	}

	if err := applyFeatureGates(utilfeature.DefaultMutableFeatureGate, o.config.FeatureGates); err != nil {
		return err
	}
	// Histogram metrics read these gates when they are registered, which happens later.
	metricsfeatures.ApplyFeatureGates(utilfeature.DefaultFeatureGate)
	return nil
}

// foldFlagsIntoConfig applies the flags that have no field of their own: the per-mode sync
// periods (the ipvs ones count in ipvs mode, the iptables ones otherwise) and --cluster-cidr.
func (o *Options) foldFlagsIntoConfig(fs *pflag.FlagSet) {
	ipvsMode := o.config.Mode == kubeproxyconfig.ProxyModeIPVS
	if fs.Changed("iptables-sync-period") && !ipvsMode {
		o.config.SyncPeriod.Duration = o.iptablesSyncPeriod
	}
	if fs.Changed("iptables-min-sync-period") && !ipvsMode {
		o.config.MinSyncPeriod.Duration = o.iptablesMinSyncPeriod
	}
	if fs.Changed("ipvs-sync-period") && ipvsMode {
		o.config.SyncPeriod.Duration = o.ipvsSyncPeriod
	}
	if fs.Changed("ipvs-min-sync-period") && ipvsMode {
		o.config.MinSyncPeriod.Duration = o.ipvsMinSyncPeriod
	}
	if fs.Changed("cluster-cidr") {
		o.config.DetectLocal.ClusterCIDRs = strings.Split(o.clusterCIDRs, ",")
	}
}

// defaultedMode records that no mode was configured, for upstream's warning about the default.
var defaultedMode bool

func applyPlatformDefaults(cfg *kubeproxyconfig.KubeProxyConfiguration) {
	if cfg.Mode == "" {
		cfg.Mode = kubeproxyconfig.ProxyModeIPTables
		defaultedMode = true
	}
	if cfg.Mode == kubeproxyconfig.ProxyModeNFTables && len(cfg.NodePortAddresses) == 0 {
		cfg.NodePortAddresses = []string{kubeproxyconfig.NodePortAddressesPrimary}
	}
	if cfg.DetectLocalMode == "" {
		cfg.DetectLocalMode = kubeproxyconfig.LocalModeClusterCIDR
	}
	klog.V(2).InfoS("DetectLocalMode", "localMode", string(cfg.DetectLocalMode))
}

// addressFromPortFlag applies a deprecated --healthz-port / --metrics-port: 0 disables the server.
func addressFromPortFlag(addr string, port int32) string {
	if port == 0 {
		return ""
	}
	return proxyutil.AppendPortIfNeeded(addr, port)
}

// copyChangedLoggingFlags copies the logging flags set on the command line into to. vmodule
// entries from the flags are appended after the file's, so the command line wins.
func copyChangedLoggingFlags(from *pflag.FlagSet, to *logsapi.LoggingConfiguration) error {
	var scratch pflag.FlagSet
	fileVModule := to.VModule
	to.VModule = nil
	logsapi.AddFlags(to, &scratch)
	var err error
	scratch.VisitAll(func(f *pflag.Flag) {
		if err != nil {
			return
		}
		given := from.Lookup(f.Name)
		if given == nil {
			err = fmt.Errorf("logging flag %s not found in flag set", f.Name)
			return
		}
		if given.Changed {
			if setErr := f.Value.Set(given.Value.String()); setErr != nil {
				err = fmt.Errorf("copying flag %s value: %w", f.Name, setErr)
			}
		}
	})
	to.VModule = append(to.VModule, fileVModule...)
	return err
}
