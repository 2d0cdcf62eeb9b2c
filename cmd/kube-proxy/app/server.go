package app

import (
	"context"
	"fmt"
	"net"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/tools/events"
	componentbaseconfig "k8s.io/component-base/config"
	"k8s.io/component-base/configz"
	"k8s.io/component-base/metrics"
	nodeutil "k8s.io/component-helpers/node/util"
	"k8s.io/klog/v2"
	configv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	"k8s.io/kubernetes/pkg/proxy"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	proxyconfigscheme "k8s.io/kubernetes/pkg/proxy/apis/config/scheme"
	v1alpha1conversion "k8s.io/kubernetes/pkg/proxy/apis/config/v1alpha1"
	"k8s.io/kubernetes/pkg/proxy/conntrack"
	"k8s.io/kubernetes/pkg/proxy/healthcheck"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/forkconfig"
)

// ProxyServer is everything a running kube-proxy holds: the API client, the node it runs on,
// the health server, the event recorder and the proxier.
type ProxyServer struct {
	Config *kubeproxyconfig.KubeProxyConfiguration
	Fork   forkconfig.Config

	Client        clientset.Interface
	Broadcaster   events.EventBroadcaster
	Recorder      events.EventRecorder
	NodeRef       *v1.ObjectReference
	NodeName      string
	NodeManager   *proxy.NodeManager
	HealthzServer *healthcheck.ProxyHealthServer

	PrimaryIPFamily v1.IPFamily
	NodeIPs         map[v1.IPFamily]net.IP
	podCIDRs        []string

	Proxier proxy.Provider
}

func newProxyServer(ctx context.Context, cfg *kubeproxyconfig.KubeProxyConfiguration, fork forkconfig.Config, master string, initOnly bool) (*ProxyServer, error) {
	logger := klog.FromContext(ctx)
	s := &ProxyServer{Config: cfg, Fork: fork}

	logForkConfig(logger, fork)
	if cfg.Mode != kubeproxyconfig.ProxyModeNFTables { // nftables mode runs no iptables
		checkXtablesLock(logger, hostXtablesLockEnv())
	}
	if err := registerConfigz(cfg, fork); err != nil {
		return nil, err
	}
	if cfg.ShowHiddenMetricsForVersion != "" {
		metrics.SetShowHidden()
	}

	var err error
	if s.NodeName, err = nodeutil.GetHostname(cfg.HostnameOverride); err != nil {
		return nil, err
	}
	if s.Client, err = newClient(ctx, cfg.ClientConnection, master); err != nil {
		return nil, err
	}
	// The node manager waits for our Node object (for its IPs and pod CIDRs) and later exits
	// the process if they change, as upstream does.
	if s.NodeManager, err = proxy.NewNodeManager(ctx, s.Client, s.NodeName, cfg); err != nil {
		return nil, err
	}
	raw := s.NodeManager.NodeIPs()
	if len(raw) > 0 {
		logger.Info("Successfully retrieved NodeIPs", "NodeIPs", raw)
	}
	s.PrimaryIPFamily, s.NodeIPs = detectNodeIPs(logger, raw, cfg.BindAddress)
	s.podCIDRs = s.NodeManager.PodCIDRs()
	cfg.NodePortAddresses = expandNodePortAddresses(cfg.NodePortAddresses, s.NodeIPs)

	s.Broadcaster = events.NewBroadcaster(&events.EventSinkImpl{Interface: s.Client.EventsV1()})
	s.Recorder = s.Broadcaster.NewRecorder(proxyconfigscheme.Scheme, "kube-proxy")
	s.NodeRef = &v1.ObjectReference{APIVersion: "v1", Kind: "Node", Name: s.NodeName}

	if cfg.HealthzBindAddress != "" {
		s.HealthzServer = healthcheck.NewProxyHealthServer(cfg.HealthzBindAddress, 2*cfg.SyncPeriod.Duration, s.NodeManager)
	}

	if err := conntrack.SetSysctls(ctx, &cfg.Linux.Conntrack); err != nil {
		return nil, fmt.Errorf("could not set conntrack parameters from kube-proxy configuration: %w", err)
	}

	if err := warnNodePortAddresses(cfg, s.PrimaryIPFamily, s.podCIDRs); err != nil {
		logger.Error(err, "Kube-proxy configuration may be incomplete or incorrect")
	}

	v4, v6, err := familiesSupported(ctx, cfg.Mode)
	if err != nil {
		return nil, err
	}
	if (s.PrimaryIPFamily == v1.IPv4Protocol && !v4) || (s.PrimaryIPFamily == v1.IPv6Protocol && !v6) {
		return nil, fmt.Errorf("no support for primary IP family %q", s.PrimaryIPFamily)
	}
	dualStack := v4 && v6
	if dualStack {
		logger.Info("kube-proxy running in dual-stack mode", "primary ipFamily", s.PrimaryIPFamily)
	} else {
		logger.Info("kube-proxy running in single-stack mode", "ipFamily", s.PrimaryIPFamily)
	}
	if err, fatal := checkIPFamilyConfig(cfg, s.PrimaryIPFamily, s.podCIDRs, dualStack); err != nil {
		if fatal {
			return nil, fmt.Errorf("kube-proxy configuration is incorrect: %w", err)
		}
		logger.Error(err, "Kube-proxy configuration may be incomplete or incorrect")
	}

	if s.Proxier, err = s.createProxier(ctx, dualStack, initOnly); err != nil {
		return nil, err
	}
	return s, nil
}

// registerConfigz publishes the configuration at /configz: the v1alpha1 form of upstream's under
// its group name, as upstream does, and the fork's settings in a section of their own
// (forkconfig.ConfigzName), so that readers of upstream's section see exactly upstream's object.
func registerConfigz(cfg *kubeproxyconfig.KubeProxyConfiguration, fork forkconfig.Config) error {
	external := &configv1alpha1.KubeProxyConfiguration{}
	if err := v1alpha1conversion.Convert_config_KubeProxyConfiguration_To_v1alpha1_KubeProxyConfiguration(cfg, external, nil); err != nil {
		return fmt.Errorf("unable to convert configz: %w", err)
	}
	external.SetGroupVersionKind(configv1alpha1.SchemeGroupVersion.WithKind("KubeProxyConfiguration"))
	sections := []struct {
		name string
		obj  runtime.Object
	}{{kubeproxyconfig.GroupName, external}, {forkconfig.ConfigzName, fork.Configz()}}
	for _, s := range sections {
		cz, err := configz.New(s.name)
		if err != nil {
			return fmt.Errorf("unable to register configz: %w", err)
		}
		if err := cz.Set(s.obj); err != nil {
			return fmt.Errorf("unable to set configz: %w", err)
		}
	}
	return nil
}

// logForkConfig logs the fork's settings in effect (the file's, the defaults and the flags
// merged) in one line: they decide what kube-proxy binds and captures, and the flags printed at
// start do not show what the config file set.
func logForkConfig(logger klog.Logger, fork forkconfig.Config) {
	c := fork.Configz()
	logger.Info("kube-proxy-ipvs settings",
		"bindLoadBalancerIngress", c.IPVS.BindLoadBalancerIngress,
		"protectedCIDRs", c.IPVS.ProtectedCIDRs,
		"externalIPCIDRs", c.IPVS.ExternalIPCIDRs,
		"masqueradeRandomFully", c.IPTables.MasqueradeRandomFully)
}

// newClient builds the API client from the kubeconfig and/or --master, or in-cluster config.
func newClient(ctx context.Context, cc componentbaseconfig.ClientConnectionConfiguration, master string) (clientset.Interface, error) {
	var restConfig *rest.Config
	var err error
	if cc.Kubeconfig == "" && master == "" {
		klog.FromContext(ctx).Info("Neither kubeconfig file nor master URL was specified, falling back to in-cluster config")
		restConfig, err = rest.InClusterConfig()
	} else {
		restConfig, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
			&clientcmd.ClientConfigLoadingRules{ExplicitPath: cc.Kubeconfig},
			&clientcmd.ConfigOverrides{ClusterInfo: clientcmdapi.Cluster{Server: master}}).ClientConfig()
	}
	if err != nil {
		return nil, err
	}
	restConfig.AcceptContentTypes = cc.AcceptContentTypes
	restConfig.ContentType = cc.ContentType
	restConfig.QPS = cc.QPS
	restConfig.Burst = int(cc.Burst)
	return clientset.NewForConfig(restConfig)
}
