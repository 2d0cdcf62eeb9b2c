package diagnose

import (
	"context"
	"fmt"
	"net/netip"
	"sort"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/klog/v2"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipset"
	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
)

// KernelReader reads the node's kernel state; every method only reads. Implementations:
// NewKernelReader (Linux) and the tests' fake.
type KernelReader interface {
	Release() (string, error)
	Links() ([]Link, error)
	Gateways() ([]netip.Addr, error)
	// Sysctl reads /proc/sys/KEY; ok is false when the kernel has no such key.
	Sysctl(key string) (value string, ok bool, err error)
	// IPTablesSave returns iptables-save (family "IPv4") or ip6tables-save ("IPv6") of table.
	IPTablesSave(family, table string) (string, error)
	VirtualServers() ([]kipvs.VirtualServer, error)
	IPSets(names ...string) ([]ipset.Content, error)
	// MartianLog returns the kernel log lines about martian packets.
	MartianLog() ([]string, error)
}

// ClusterReader reads the objects the Service checks need from the apiserver.
type ClusterReader interface {
	Services(ctx context.Context) ([]corev1.Service, error)
	EndpointSlices(ctx context.Context) ([]discoveryv1.EndpointSlice, error)
	Nodes(ctx context.Context) ([]corev1.Node, error)
}

// sysctlKeys are read always; per-link keys are added for each link.
var sysctlKeys = []string{
	"net/ipv4/vs/conntrack", "net/ipv4/vs/conn_reuse_mode", "net/ipv4/vs/expire_nodest_conn",
	"net/ipv4/vs/expire_quiescent_template", "net/ipv4/ip_forward",
	"net/ipv4/conf/all/rp_filter", "net/ipv4/conf/all/log_martians", "net/ipv4/conf/all/accept_local",
	"net/ipv4/conf/default/rp_filter", "net/ipv4/conf/all/arp_ignore", "net/ipv4/conf/all/arp_announce",
}

// Collect reads everything the checks use. A source that cannot be read is recorded in
// Snapshot.Missing and the rest is still read. cluster may be nil (no kubeconfig): noCluster
// then says why.
func Collect(ctx context.Context, k KernelReader, cluster ClusterReader, nodeName, noCluster string) *Snapshot {
	s := &Snapshot{NodeName: nodeName, Missing: map[Source]string{}, Sysctls: map[string]string{}, IPTables: map[string]map[string]string{}}
	miss := func(src Source, err error) {
		s.Missing[src] = err.Error()
		klog.V(2).InfoS("Diagnose could not read a source", "source", src, "err", err)
	}
	var err error
	if s.KernelRelease, err = k.Release(); err != nil {
		miss(SourceKernelRelease, err)
	}
	if s.Links, err = k.Links(); err != nil {
		miss(SourceLinks, err)
	}
	sort.Slice(s.Links, func(i, j int) bool { return s.Links[i].Name < s.Links[j].Name })
	if s.Gateways, err = k.Gateways(); err != nil {
		miss(SourceRoutes, err)
	}
	keys := append([]string(nil), sysctlKeys...)
	for _, l := range s.Links {
		keys = append(keys, "net/ipv4/conf/"+l.Name+"/rp_filter", "net/ipv4/conf/"+l.Name+"/accept_local")
	}
	for _, key := range keys {
		v, ok, err := k.Sysctl(key)
		if err != nil {
			miss(SourceSysctls, fmt.Errorf("%s: %w", key, err))
			break
		}
		if ok {
			s.Sysctls[key] = v
		}
	}
	var ipterr error
	for _, fam := range []string{"IPv4", "IPv6"} {
		for _, table := range []string{"nat", "mangle"} {
			text, err := k.IPTablesSave(fam, table)
			if err != nil {
				if fam == "IPv4" && ipterr == nil {
					ipterr = err
				}
				klog.V(2).InfoS("Diagnose could not read iptables", "family", fam, "table", table, "err", err)
				continue
			}
			if s.IPTables[fam] == nil {
				s.IPTables[fam] = map[string]string{}
			}
			s.IPTables[fam][table] = text
		}
	}
	if len(s.IPTables) == 0 && ipterr != nil {
		miss(SourceIPTables, ipterr)
	}
	if s.IPVS, err = k.VirtualServers(); err != nil {
		miss(SourceIPVS, err)
	}
	if s.IPSets, err = k.IPSets(lbLocalSet); err != nil {
		miss(SourceIPSets, err)
	}
	if s.KernelLog, err = k.MartianLog(); err != nil {
		miss(SourceKernelLog, err)
	}
	if cluster == nil {
		for _, src := range []Source{SourceServices, SourceEndpointSlices, SourceNodes} {
			s.Missing[src] = noCluster
		}
		return s
	}
	if s.Services, err = cluster.Services(ctx); err != nil {
		miss(SourceServices, err)
	}
	if s.EndpointSlices, err = cluster.EndpointSlices(ctx); err != nil {
		miss(SourceEndpointSlices, err)
	}
	if s.Nodes, err = cluster.Nodes(ctx); err != nil {
		miss(SourceNodes, err)
	}
	return s
}
