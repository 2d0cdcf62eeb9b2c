package app

import (
	"context"
	"errors"

	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	upstreamiptables "k8s.io/kubernetes/pkg/proxy/iptables"
	"k8s.io/kubernetes/pkg/proxy/nftables"
)

// cleanupOtherModes removes the leftovers of the modes not in use, as upstream does at start, so
// switching modes through the ConfigMap leaves no stale rules; with --cleanup it removes all.
// The iptables and ipvs modes share iptables chains, so neither removes the other's there.
func cleanupOtherModes(ctx context.Context, mode kubeproxyconfig.ProxyMode, all bool) error {
	iptablesBased := mode == kubeproxyconfig.ProxyModeIPTables || mode == kubeproxyconfig.ProxyModeIPVS
	failed := false
	if !iptablesBased || all {
		failed = upstreamiptables.CleanupLeftovers(ctx) || failed
		failed = cleanupIPVS(ctx) || failed
	}
	if iptablesBased || all {
		failed = nftables.CleanupLeftovers(ctx) || failed
	}
	if failed {
		return errors.New("encountered an error while tearing down rules")
	}
	return nil
}
