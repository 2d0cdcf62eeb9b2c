package surface

import (
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/upstream-kube-proxy.txt from the vendored upstream")

const golden = "testdata/upstream-kube-proxy.txt"

// TestSurfaceCurrent fails when testdata/upstream-kube-proxy.txt does not describe the vendored
// upstream release: after a bump, hack/bump-upstream.sh rewrites it and prints the diff.
func TestSurfaceCurrent(t *testing.T) {
	got, err := Upstream("update")
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (create it: go test ./hack/maint/surface -args -update)", err)
	}
	if d := cmp.Diff(string(want), got); d != "" {
		t.Errorf("%s is stale (-file +vendored upstream); hack/bump-upstream.sh rewrites it, or go test ./hack/maint/surface -args -update:\n%s", golden, d)
	}
}

// The sections hold what they claim: a flag, a nested config field, a default, the IPVS gate.
func TestSurfaceSections(t *testing.T) {
	got, err := Upstream("update")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\n--proxy-mode ProxyMode \"\"\n",
		"\nipvs.scheduler string\n",
		"\nconntrack.tcpEstablishedTimeout *v1.Duration\n",
		"\nfeatureGates map[string]bool\n",
		"\nhealthzBindAddress: 0.0.0.0:10256\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("surface lacks %q", want)
		}
	}
	// Which gates exist changes with the release (KubeProxyIPVS is in 1.37, not in 1.36): at least one.
	if !regexp.MustCompile(`\n## feature gates[^\n]*\n\w+ default=(true|false) `).MatchString(got) {
		t.Error("the feature gates section is empty")
	}
}
