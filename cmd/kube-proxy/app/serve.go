package app

import (
	"context"
	"fmt"
	"net/http"
	"time"

	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/apiserver/pkg/server/mux"
	"k8s.io/apiserver/pkg/server/routes"
	"k8s.io/component-base/configz"
	"k8s.io/component-base/logs"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/component-base/metrics/prometheus/slis"
	"k8s.io/klog/v2"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	"k8s.io/kubernetes/pkg/proxy/healthcheck"
	netutils "k8s.io/utils/net"
)

// serveHealthz runs the proxy health server (/healthz, /livez), restarting it if it stops. With
// errCh set (--bind-address-hard-fail) a failure is reported once and the restart loop parks.
func serveHealthz(ctx context.Context, hz *healthcheck.ProxyHealthServer, errCh chan error) {
	if hz == nil {
		return
	}
	logger := klog.FromContext(ctx)
	go wait.UntilWithContext(ctx, func(ctx context.Context) {
		err := hz.Run(ctx)
		if err == nil {
			logger.Error(nil, "Healthz server returned without error")
			return
		}
		logger.Error(err, "Healthz server failed")
		if errCh != nil {
			errCh <- fmt.Errorf("healthz server failed: %w", err)
			<-ctx.Done()
		}
	}, 5*time.Second)
}

// serveMetrics runs the metrics server: /metrics (upstream's metric names), /healthz,
// /proxyMode, /configz, and with profiling /debug/pprof and /debug/flags/v.
func serveMetrics(ctx context.Context, bindAddress string, mode kubeproxyconfig.ProxyMode, profiling bool, errCh chan error) {
	if bindAddress == "" {
		return
	}
	m := mux.NewPathRecorderMux("kube-proxy")
	healthz.InstallHandler(m)
	slis.SLIMetricsWithReset{}.Install(m)
	m.HandleFunc("/proxyMode", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		fmt.Fprintf(w, "%s", mode)
	})
	m.Handle("/metrics", legacyregistry.Handler())
	if profiling {
		routes.Profiling{}.Install(m)
		routes.DebugFlags{}.Install(m, "v", routes.StringFlagPutHandler(logs.GlogSetter))
	}
	configz.InstallHandler(m)

	go wait.UntilWithContext(ctx, func(ctx context.Context) {
		listener, err := netutils.MultiListen(ctx, "tcp", bindAddress)
		if err == nil {
			err = (&http.Server{Handler: m}).Serve(listener)
		}
		if err != nil {
			utilruntime.HandleErrorWithContext(ctx, err, "starting metrics server failed")
			if errCh != nil {
				errCh <- err
				<-ctx.Done()
			}
		}
	}, 5*time.Second)
}
