package framework

// The two iptables backends of a node: legacy (x_tables) and nft (nf_tables) hold separate rule
// sets in the same network namespace. A kube-proxy binary runs whatever `iptables` its PATH
// finds: Debian's points at the nft backend, so a node "on legacy" is one whose kube-proxy finds
// the legacy commands first.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// LegacyIptables returns impl running with Debian's iptables-legacy commands first on its PATH.
func LegacyIptables(impl Impl) (Impl, error) {
	dir := filepath.Join(os.TempDir(), "e2e-iptables-legacy")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return impl, err
	}
	for _, n := range []string{"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"} {
		target, err := exec.LookPath(strings.Replace(n, "tables", "tables-legacy", 1))
		if err != nil {
			return impl, err
		}
		_ = os.Remove(filepath.Join(dir, n))
		if err := os.Symlink(target, filepath.Join(dir, n)); err != nil {
			return impl, err
		}
	}
	impl.Env = append(append([]string(nil), impl.Env...), "PATH="+dir+":"+os.Getenv("PATH"))
	impl.Name += "-legacy"
	return impl, nil
}

// IptablesSave is `iptables-<backend>-save` (backend "legacy" or "nft") of the IPv4 rules in
// node, as the kernel holds them.
func (n *Node) IptablesSave(ctx context.Context, backend string) (string, error) {
	return n.Run(ctx, "iptables-"+backend+"-save")
}

// KubeChains lists the chains named KUBE-* that an iptables-save output declares, as
// "table/chain".
func KubeChains(save string) []string {
	var out []string
	table := ""
	for _, l := range strings.Split(save, "\n") {
		switch {
		case strings.HasPrefix(l, "*"):
			table = l[1:]
		case strings.HasPrefix(l, ":KUBE-"):
			out = append(out, table+"/"+strings.Fields(l[1:])[0])
		}
	}
	return out
}
