package diagnose

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipset"
	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
)

// fakeKernel is a KernelReader over a Snapshot; err names sources that fail.
type fakeKernel struct {
	s   *Snapshot
	err map[Source]error
}

func (f fakeKernel) fail(src Source) error    { return f.err[src] }
func (f fakeKernel) Release() (string, error) { return f.s.KernelRelease, f.fail(SourceKernelRelease) }
func (f fakeKernel) Links() ([]Link, error)   { return f.s.Links, f.fail(SourceLinks) }
func (f fakeKernel) Gateways() ([]netip.Addr, error) {
	return f.s.Gateways, f.fail(SourceRoutes)
}
func (f fakeKernel) Sysctl(k string) (string, bool, error) {
	v, ok := f.s.Sysctls[k]
	return v, ok, f.fail(SourceSysctls)
}
func (f fakeKernel) IPTablesSave(fam, table string) (string, error) {
	if err := f.fail(SourceIPTables); err != nil {
		return "", err
	}
	text, ok := f.s.IPTables[fam][table]
	if !ok {
		return "", errors.New("no such family")
	}
	return text, nil
}
func (f fakeKernel) VirtualServers() ([]kipvs.VirtualServer, error) {
	return f.s.IPVS, f.fail(SourceIPVS)
}
func (f fakeKernel) IPSets(...string) ([]ipset.Content, error) {
	return f.s.IPSets, f.fail(SourceIPSets)
}
func (f fakeKernel) MartianLog() ([]string, error) { return f.s.KernelLog, f.fail(SourceKernelLog) }

type fakeAPI struct {
	s         *Snapshot
	nodesDeny bool
}

func (f fakeAPI) Services(context.Context) ([]corev1.Service, error) { return f.s.Services, nil }
func (f fakeAPI) EndpointSlices(context.Context) ([]discoveryv1.EndpointSlice, error) {
	return f.s.EndpointSlices, nil
}
func (f fakeAPI) Nodes(context.Context) ([]corev1.Node, error) {
	if f.nodesDeny {
		return nil, errors.New(`nodes is forbidden: User "x" cannot list resource "nodes"`)
	}
	return f.s.Nodes, nil
}

// TestCollect: what the readers return lands in the Snapshot; a failing reader is recorded and
// the others are still read (no ip_vs, no iptables binary, no permission for Nodes).
func TestCollect(t *testing.T) {
	want := node()
	k := fakeKernel{s: want, err: map[Source]error{
		SourceIPVS:     errors.New("ip_vs is not loaded"),
		SourceIPTables: errors.New(`exec: "iptables-save": executable file not found in $PATH`),
	}}
	got := Collect(context.Background(), k, fakeAPI{s: want, nodesDeny: true}, "node-a", "")
	for src, frag := range map[Source]string{SourceIPVS: "ip_vs", SourceIPTables: "iptables-save", SourceNodes: "forbidden"} {
		if !strings.Contains(got.Missing[src], frag) {
			t.Errorf("missing[%s] = %q, want it to say %q", src, got.Missing[src], frag)
		}
	}
	if len(got.Missing) != 3 {
		t.Errorf("missing: %v", got.Missing)
	}
	if len(got.Links) != len(want.Links) || len(got.Services) != 2 || got.Sysctls["net/ipv4/vs/conntrack"] != "1" {
		t.Errorf("collected: %+v", got)
	}
	rep := Run(got)
	text := render(rep)
	for _, line := range []string{"ipvs: ip_vs is not loaded", "vxlan-checksum-offload     skipped (iptables not read", "nodes: nodes is forbidden"} {
		if !strings.Contains(text, line) {
			t.Errorf("report lacks %q:\n%s", line, text)
		}
	}

	noAPI := Collect(context.Background(), fakeKernel{s: want}, nil, "node-a", "no kubeconfig")
	if noAPI.Missing[SourceServices] != "no kubeconfig" || len(noAPI.Missing) != 3 {
		t.Errorf("without a cluster: %v", noAPI.Missing)
	}
}

// TestJSON: the documented fields, severities as words.
func TestJSON(t *testing.T) {
	s := node()
	bind(s, "10.96.0.99")
	var b strings.Builder
	if err := WriteJSON(&b, Run(s)); err != nil {
		t.Fatal(err)
	}
	var out struct {
		SchemaVersion string
		Findings      []map[string]any
		Checks        []map[string]any
		Sources       []map[string]any
	}
	if err := json.Unmarshal([]byte(b.String()), &out); err != nil {
		t.Fatal(err)
	}
	if out.SchemaVersion != SchemaVersion || len(out.Findings) != 1 || out.Findings[0]["severity"] != "warning" ||
		out.Findings[0]["id"] != IDStrayAddress || len(out.Checks) != len(checks) || len(out.Sources) != len(allSources) {
		t.Fatalf("JSON:\n%s", b.String())
	}
	if !Run(s).Fails(Warning) || Run(s).Fails(Error) {
		t.Error("Fails")
	}
}
