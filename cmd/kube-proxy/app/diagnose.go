package app

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/component-base/logs"
	"k8s.io/klog/v2"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/diagnose"
)

// diagnoseExitFindings is the exit status when a finding at or above --fail-on was made; 1
// stays "diagnose itself failed" (component-base's cli.Run), 0 "nothing found".
const diagnoseExitFindings = 2

// exit is os.Exit; tests replace it.
var exit = os.Exit

type diagnoseOptions struct {
	kubeconfig string
	master     string
	nodeName   string
	output     string
	failOn     string
	colour     string
	timeout    time.Duration
}

// newDiagnoseCommand is `kube-proxy diagnose`: a read-only report of the IPVS failure modes on
// this node (docs/diagnose.md). A subcommand, so the root command's flags stay upstream's.
func newDiagnoseCommand() *cobra.Command {
	o := diagnoseOptions{output: "text", failOn: "warning", colour: "auto", timeout: 30 * time.Second}
	cmd := &cobra.Command{
		Use:   "diagnose",
		Short: "Report the IPVS failure modes present on this node (read-only)",
		Long: `diagnose reads this node's kernel (links, addresses, routes, sysctls, iptables, IPVS, ipsets) and,
with a kubeconfig (--kubeconfig, or in-cluster), the Services, EndpointSlices and Nodes, and reports
the known IPVS failure modes it finds: the VXLAN checksum-offload bug with --random-fully, LoadBalancer
health checks dropped as martians, double masquerade of tunnel traffic, Service addresses equal to a
node's or the apiserver's, and drift. It changes nothing, and works on a node running upstream's
kube-proxy too. Exit status: 0 nothing at or above --fail-on, 2 something, 1 diagnose failed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context(), cmd.OutOrStdout())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig to read Services, EndpointSlices and Nodes with; default: in-cluster when in a pod, else kernel checks only")
	fs.StringVar(&o.master, "master", "", "the apiserver's address (overrides the kubeconfig's)")
	fs.StringVar(&o.nodeName, "hostname-override", "", "this node's Node name; default $NODE_NAME, else the hostname")
	fs.StringVarP(&o.output, "output", "o", o.output, "text or json")
	fs.StringVar(&o.failOn, "fail-on", o.failOn, "exit 2 when a finding at or above this severity is made: info, warning or error")
	fs.StringVar(&o.colour, "color", o.colour, "colour the text report: auto (on a terminal), always or never")
	fs.DurationVar(&o.timeout, "timeout", o.timeout, "how long to wait for the apiserver")
	return cmd
}

func (o diagnoseOptions) run(ctx context.Context, w io.Writer) error {
	failOn, err := diagnose.ParseSeverity(o.failOn)
	if err != nil {
		return fmt.Errorf("--fail-on: %w", err)
	}
	if o.output != "text" && o.output != "json" {
		return fmt.Errorf("--output=%q: want text or json", o.output)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	var cluster diagnose.ClusterReader
	client, noCluster := o.client()
	if client != nil {
		cluster = diagnose.APIReader{Client: client}
	}
	node := o.node()
	start := time.Now()
	snap := diagnose.Collect(ctx, diagnose.NewKernelReader(), cluster, node, noCluster)
	rep := diagnose.Run(snap)
	klog.V(2).InfoS("Diagnose done", "node", node, "findings", len(rep.Findings), "elapsed", time.Since(start))
	if o.output == "json" {
		err = diagnose.WriteJSON(w, rep)
	} else {
		err = diagnose.WriteText(w, rep, o.useColour(w))
	}
	if err != nil {
		return err
	}
	if rep.Fails(failOn) {
		logs.FlushLogs()
		exit(diagnoseExitFindings)
	}
	return nil
}

// client builds the apiserver client, or says why there is none (the report shows it).
func (o diagnoseOptions) client() (kubernetes.Interface, string) {
	var cfg *rest.Config
	var err error
	switch {
	case o.kubeconfig != "" || o.master != "":
		cfg, err = clientcmd.BuildConfigFromFlags(o.master, o.kubeconfig)
	default:
		cfg, err = rest.InClusterConfig()
		if err != nil {
			return nil, "no kubeconfig: pass --kubeconfig, or run in a pod with a service account (" + err.Error() + ")"
		}
	}
	if err != nil {
		return nil, "kubeconfig: " + err.Error()
	}
	cfg.UserAgent = "kube-proxy-diagnose"
	// Protobuf, as kube-proxy's own client (clientConnection.contentType's default): decoding
	// every Service and EndpointSlice of a large cluster as JSON costs several times the CPU.
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, "client: " + err.Error()
	}
	return c, ""
}

func (o diagnoseOptions) node() string {
	if o.nodeName != "" {
		return strings.ToLower(o.nodeName)
	}
	if n := os.Getenv("NODE_NAME"); n != "" {
		return strings.ToLower(n)
	}
	h, _ := os.Hostname()
	return strings.ToLower(h)
}

func (o diagnoseOptions) useColour(w io.Writer) bool {
	switch o.colour {
	case "always":
		return true
	case "never":
		return false
	}
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
