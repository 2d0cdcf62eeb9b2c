package app_test

import (
	"strings"
	"testing"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/cmd/kube-proxy/app"
)

// TestDiagnoseSubcommand: `kube-proxy diagnose` reaches the subcommand, with its own flags; any
// other argument is still refused as upstream refuses it, and no other subcommand (cobra's
// completion) appears.
func TestDiagnoseSubcommand(t *testing.T) {
	cmd := app.NewProxyCommand()
	sub, rest, err := cmd.Find([]string{"diagnose", "--output=json"})
	if err != nil || sub.Name() != "diagnose" || len(rest) != 1 {
		t.Fatalf("Find(diagnose): %v %v %v", sub.Name(), rest, err)
	}
	for _, f := range []string{"kubeconfig", "output", "fail-on", "hostname-override", "color", "timeout"} {
		if sub.Flags().Lookup(f) == nil {
			t.Errorf("diagnose has no --%s", f)
		}
	}
	if cmd.Flags().Lookup("fail-on") != nil || cmd.Flags().Lookup("output") != nil {
		t.Error("diagnose's flags leaked into the root command")
	}
	for _, c := range cmd.Commands() {
		if c.Name() != "diagnose" && c.Name() != "help" {
			t.Errorf("unexpected subcommand %q", c.Name())
		}
	}
	cmd.SetArgs([]string{"foo"})
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "does not take any arguments") {
		t.Fatalf("kube-proxy foo: %v", err)
	}
}
