package app

import (
	"context"
	goflag "flag"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"
	metricsfeatures "k8s.io/component-base/metrics/features"
	"k8s.io/component-base/version"
	_ "k8s.io/component-base/version/verflag" // registers --version, as upstream
	"k8s.io/klog/v2"

	forkversion "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/version"
)

func init() {
	// The same component-base gates upstream kube-proxy registers (logging and metrics features).
	utilruntime.Must(metricsfeatures.AddFeatureGates(utilfeature.DefaultMutableFeatureGate))
	utilruntime.Must(logsapi.AddFeatureGates(utilfeature.DefaultMutableFeatureGate))
}

// NewProxyCommand builds the kube-proxy command.
func NewProxyCommand() *cobra.Command {
	opts := NewOptions()
	cmd := &cobra.Command{
		Use: "kube-proxy",
		Long: `kube-proxy-ipvs: the Kubernetes network proxy, a drop-in replacement for upstream kube-proxy
that keeps the IPVS mode maintained. It runs on each node and reflects Services and EndpointSlices
into the kernel (IPVS, ipsets and iptables in ipvs mode; upstream's rules in iptables and nftables
mode). Flags and the --config file are those of upstream kube-proxy ` + forkversion.Upstream + `.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if printVersionIfRequested(cmd) {
				return nil
			}
			if err := opts.Complete(cmd.Flags()); err != nil {
				return fmt.Errorf("failed complete: %w", err)
			}
			logs.InitLogs()
			if err := logsapi.ValidateAndApplyAsField(&opts.config.Logging, utilfeature.DefaultFeatureGate, field.NewPath("logging")); err != nil {
				return fmt.Errorf("initialize logging: %w", err)
			}
			cliflag.PrintFlags(cmd.Flags())
			if err := opts.Validate(); err != nil {
				return fmt.Errorf("failed validate: %w", err)
			}
			utilfeature.DefaultMutableFeatureGate.AddMetrics()
			if err := opts.Run(context.Background()); err != nil {
				klog.ErrorS(err, "Error running ProxyServer")
				return err
			}
			return nil
		},
		Args: func(cmd *cobra.Command, args []string) error {
			for _, arg := range args {
				if arg != "" {
					return fmt.Errorf("%q does not take any arguments, got %q", cmd.CommandPath(), args)
				}
			}
			return nil
		},
	}
	fs := cmd.Flags()
	opts.AddFlags(fs)
	fs.AddGoFlagSet(goflag.CommandLine) // --boot-id-file, --machine-id-file, as upstream
	_ = cmd.MarkFlagFilename("config", "yaml", "yml", "json")
	// The one subcommand; without it upstream's "takes no arguments" is kept (Args above).
	cmd.AddCommand(newDiagnoseCommand())
	cmd.CompletionOptions.DisableDefaultCmd = true
	return cmd
}

// printVersionIfRequested handles --version (registered globally by component-base's verflag):
// it names the fork version and the upstream release it tracks.
func printVersionIfRequested(cmd *cobra.Command) bool {
	f := cmd.Flags().Lookup("version")
	if f == nil {
		return false
	}
	switch f.Value.String() {
	case "true":
		fmt.Fprintf(os.Stdout, "Kubernetes %s (kube-proxy-ipvs %s, tracking upstream %s)\n", forkversion.Fork, forkversion.Fork, forkversion.Upstream)
		return true
	case "raw":
		fmt.Fprintf(os.Stdout, "%#v\n", version.Get())
		return true
	}
	return false
}
