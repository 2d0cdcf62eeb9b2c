package ipvs

import (
	"context"
	"errors"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	utiliptables "k8s.io/kubernetes/pkg/util/iptables"
	utilexec "k8s.io/utils/exec"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipset"
	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/netdev"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/desired"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/reconcile"
)

// CleanupLeftovers removes everything the IPVS proxier (ours or upstream's) creates: every
// IPVS virtual server, kube-ipvs0, our iptables chains and the jumps to them, and our ipsets
// of both families (upstream forgets the IPv6 ones). It reports whether anything failed.
// Without IPVS in the kernel there is nothing of ours to remove.
func CleanupLeftovers(ctx context.Context) bool {
	ipvs, err := kipvs.NewNetlink()
	if err != nil {
		klog.FromContext(ctx).V(2).Info("IPVS not available, nothing to clean up", "err", err)
		return false
	}
	defer ipvs.Close()
	return cleanup(ctx, ipvs, netdev.NewNetlink(), ipset.NewKernel(utilexec.New()), utiliptables.NewBestEffort())
}

func cleanup(ctx context.Context, ipvs kipvs.Interface, nd netdev.Interface, is ipset.Interface, ipts map[v1.IPFamily]utiliptables.Interface) bool {
	logger := klog.FromContext(ctx)
	failed := false
	fail := func(err error, msg string, kv ...any) {
		logger.Error(err, msg, kv...)
		failed = true
	}
	if err := ipvs.Flush(); err != nil {
		fail(err, "Error flushing IPVS rules")
	}
	if err := nd.DeleteLink(reconcile.DummyDevice); err != nil {
		fail(err, "Error deleting the dummy device", "device", reconcile.DummyDevice)
	}
	for _, ipt := range ipts {
		for _, j := range desired.JumpRules() {
			if err := ipt.DeleteRule(utiliptables.Table(j.Table), utiliptables.Chain(j.SourceChain), j.Args()...); err != nil && !utiliptables.IsNotFoundError(err) {
				fail(err, "Error removing an iptables jump rule", "chain", j.SourceChain)
			}
		}
		// Flush all before deleting any: our chains jump to each other.
		for _, c := range desired.KubeChains() {
			if err := ipt.FlushChain(utiliptables.Table(c.Table), utiliptables.Chain(c.Chain)); err != nil && !utiliptables.IsNotFoundError(err) {
				fail(err, "Error flushing an iptables chain", "chain", c.Chain)
			}
		}
		for _, c := range desired.KubeChains() {
			if err := ipt.DeleteChain(utiliptables.Table(c.Table), utiliptables.Chain(c.Chain)); err != nil && !utiliptables.IsNotFoundError(err) {
				fail(err, "Error deleting an iptables chain", "chain", c.Chain)
			}
		}
	}
	// The sets go last: the kernel refuses to destroy a set an iptables rule still uses.
	var ops []ipset.Op
	for _, family := range []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol} {
		for _, s := range desired.Sets(family) {
			ops = append(ops, ipset.Op{Kind: ipset.Destroy, Set: ipset.Set{Name: s.Name}})
		}
	}
	if err := is.Apply(ops); err != nil && !errors.Is(err, context.Canceled) {
		fail(err, "Error destroying ipsets")
	}
	return failed
}
