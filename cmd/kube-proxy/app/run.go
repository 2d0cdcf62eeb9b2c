package app

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/fsnotify/fsnotify"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/wait"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/client-go/informers"
	"k8s.io/component-base/version"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/features"
	"k8s.io/kubernetes/pkg/proxy/apis"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	"k8s.io/kubernetes/pkg/proxy/config"
	proxymetrics "k8s.io/kubernetes/pkg/proxy/metrics"
	"k8s.io/kubernetes/pkg/util/filesystem"
	"k8s.io/kubernetes/pkg/util/oom"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/diagnose"
	forkversion "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/version"
)

// Run executes the resolved options: write the config and exit, clean up and exit, initialize
// and exit, or run the proxy until it fails or the config file changes.
func (o *Options) Run(ctx context.Context) error {
	if o.WriteConfigTo != "" {
		return writeConfigFile(o.WriteConfigTo, o.config, o.forkConfig)
	}
	err := cleanupOtherModes(ctx, o.config.Mode, o.CleanupAndExit)
	if o.CleanupAndExit {
		return err
	}
	// Otherwise the cleanup is best effort; the backends logged what failed.

	errCh := make(chan error, 4)
	if o.ConfigFile != "" {
		if err := watchConfigFile(ctx, o.ConfigFile, errCh); err != nil {
			return err
		}
	}
	s, err := newProxyServer(ctx, o.config, o.forkConfig, o.master, o.InitAndExit)
	if err != nil {
		return err
	}
	if o.InitAndExit {
		return nil
	}
	go func() { errCh <- s.Run(ctx) }()
	return <-errCh
}

// watchConfigFile makes kube-proxy exit when its config file is written or replaced, so the
// DaemonSet restarts it with the new configuration (upstream's behaviour).
func watchConfigFile(ctx context.Context, path string, errCh chan<- error) error {
	w := filesystem.NewFsnotifyWatcher()
	onEvent := func(e fsnotify.Event) {
		if e.Has(fsnotify.Write) || e.Has(fsnotify.Rename) {
			errCh <- errors.New("content of the proxy server's configuration file was updated")
		}
	}
	onError := func(err error) { errCh <- err }
	if err := w.Init(onEvent, onError); err != nil {
		return err
	}
	if err := w.AddWatch(path); err != nil {
		return err
	}
	w.Run(ctx)
	return nil
}

// Run starts the servers, the informers and the proxier's sync loop, and blocks until a server
// that must bind (--bind-address-hard-fail) fails.
// The running diagnose signal starts after the first syncs have had time to program the node, then
// repeats; each run reads what `kube-proxy diagnose` without a kubeconfig reads.
const (
	diagnoseSignalDelay  = time.Minute
	diagnoseSignalPeriod = 5 * time.Minute
)

func (s *ProxyServer) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	logger.Info("Version info", "version", version.Get(), "fork", forkversion.Fork, "upstream", forkversion.Upstream)
	logger.Info("Golang settings", "GOGC", os.Getenv("GOGC"), "GOMAXPROCS", os.Getenv("GOMAXPROCS"), "GOTRACEBACK", os.Getenv("GOTRACEBACK"))

	proxymetrics.RegisterMetrics(s.Config.Mode)

	if adj := s.Config.Linux.OOMScoreAdj; adj != nil {
		if err := oom.NewOOMAdjuster().ApplyOOMScoreAdj(0, int(*adj)); err != nil {
			logger.V(2).Info("Failed to apply OOMScore", "err", err)
		}
	}
	s.Broadcaster.StartRecordingToSink(ctx.Done())

	var healthzErr, metricsErr chan error
	if s.Config.BindAddressHardFail {
		healthzErr, metricsErr = make(chan error), make(chan error)
	}
	serveHealthz(ctx, s.HealthzServer, healthzErr)
	serveMetrics(ctx, s.Config.MetricsBindAddress, s.Config.Mode, s.Config.EnableProfiling, metricsErr)

	if err := s.startInformers(ctx); err != nil {
		return err
	}
	s.Recorder.Eventf(s.NodeRef, nil, v1.EventTypeNormal, "Starting", "StartKubeProxy", "")
	go s.Proxier.SyncLoop()
	if s.Config.Mode == kubeproxyconfig.ProxyModeIPVS {
		// The running signal of `kube-proxy diagnose` (docs/diagnose.md): kernel checks every
		// few minutes, exported as kubeproxy_ipvs_diagnose_findings.
		diagnose.RegisterMetrics()
		go diagnose.RunSignal(ctx, diagnose.NewKernelReader(), s.NodeName, diagnoseSignalDelay, diagnoseSignalPeriod)
	}

	select {
	case err := <-healthzErr:
		s.Recorder.Eventf(s.NodeRef, nil, v1.EventTypeWarning, "FailedToStartProxierHealthcheck", "StartKubeProxy", err.Error())
		return err
	case err := <-metricsErr:
		s.Recorder.Eventf(s.NodeRef, nil, v1.EventTypeWarning, "FailedToStartMetricServer", "StartKubeProxy", err.Error())
		return err
	}
}

// startInformers wires Services, EndpointSlices, Nodes and (with MultiCIDRServiceAllocator)
// ServiceCIDRs to the proxier, with upstream's selectors: no Services owned by another proxy
// (service.kubernetes.io/service-proxy-name), no headless Services or their slices.
func (s *ProxyServer) startInformers(ctx context.Context) error {
	noProxyName, err := labels.NewRequirement(apis.LabelServiceProxyName, selection.DoesNotExist, nil)
	if err != nil {
		return err
	}
	noHeadless, err := labels.NewRequirement(v1.IsHeadlessService, selection.DoesNotExist, nil)
	if err != nil {
		return err
	}
	resync := s.Config.ConfigSyncPeriod.Duration
	dropUnreadFields := informers.WithTransform(dropUnread)
	shared := informers.NewSharedInformerFactoryWithOptions(s.Client, resync, dropUnreadFields)
	sliceFactory := informers.NewSharedInformerFactoryWithOptions(s.Client, resync, dropUnreadFields,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = labels.NewSelector().Add(*noHeadless).String()
		}))
	serviceFactory := informers.NewSharedInformerFactoryWithOptions(s.Client, resync, dropUnreadFields,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = labels.NewSelector().Add(*noProxyName).String()
			o.FieldSelector = fields.OneTermNotEqualSelector("spec.clusterIP", v1.ClusterIPNone).String()
		}))

	// Before Services: the address guard should know every Node's address at the first sync.
	s.startClusterAddressInformers(ctx)

	services := config.NewServiceConfig(ctx, serviceFactory.Core().V1().Services(), resync)
	services.RegisterEventHandler(s.Proxier)
	go services.Run(ctx.Done())

	slices := config.NewEndpointSliceConfig(ctx, sliceFactory.Discovery().V1().EndpointSlices(), resync)
	slices.RegisterEventHandler(s.Proxier)
	go slices.Run(ctx.Done())

	if utilfeature.DefaultFeatureGate.Enabled(features.MultiCIDRServiceAllocator) {
		cidrs := config.NewServiceCIDRConfig(ctx, shared.Networking().V1().ServiceCIDRs(), resync)
		cidrs.RegisterEventHandler(s.Proxier)
		go cidrs.Run(wait.NeverStop)
	}
	shared.Start(wait.NeverStop)
	sliceFactory.Start(wait.NeverStop)
	serviceFactory.Start(wait.NeverStop)

	nodes := config.NewNodeConfig(ctx, s.NodeManager.NodeInformer(), resync)
	nodes.RegisterEventHandler(s.NodeManager)
	startTopology(ctx, s.NodeManager.NodeInformer(), s.NodeName, resync, s.Proxier)
	go nodes.Run(wait.NeverStop)
	return nil
}
