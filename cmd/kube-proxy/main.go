// Command kube-proxy is kube-proxy-ipvs's drop-in replacement for the Kubernetes network proxy:
// same binary name, flags, config file and kernel objects as upstream kube-proxy, with the IPVS
// proxier kept alive and fixed.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // --logging-format=json, as upstream
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics, as upstream
	_ "k8s.io/component-base/metrics/prometheus/version"  // kubernetes_build_info, as upstream

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/cmd/kube-proxy/app"
)

func main() {
	os.Exit(cli.Run(app.NewProxyCommand()))
}
