package ipvs

import (
	"errors"
	"fmt"
	"net/netip"

	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/desired"
)

// probeVirtualServer is a TEST-NET-2 address no service uses, for checking the scheduler.
var probeVirtualServer = kipvs.Key{Address: netip.MustParseAddr("198.51.100.0"), Protocol: kipvs.TCP, Port: 20000}

// CheckSupport fails with a clear reason when this node cannot run the IPVS proxier: no
// usable ipset tool, or a scheduler the kernel cannot load. The probe virtual server is
// read back, since a kernel without IPVS acknowledges writes it never performs.
func CheckSupport(ipvs kipvs.Interface, ipsetCheck func() error, scheduler string) error {
	if ipvs == nil {
		return errors.New("ipvs not supported by the kernel")
	}
	if err := ipsetCheck(); err != nil {
		return err
	}
	if scheduler == "" {
		scheduler = desired.DefaultScheduler
	}
	existing, err := ipvs.ListVirtualServers()
	if err != nil {
		return fmt.Errorf("reading IPVS virtual servers: %w", err)
	}
	for _, vs := range existing {
		if vs.Scheduler == scheduler {
			return nil
		}
	}
	probe := kipvs.VirtualServer{Key: probeVirtualServer, Scheduler: scheduler}
	if err := ipvs.AddVirtualServer(probe); err != nil {
		return fmt.Errorf("IPVS scheduler %q cannot be used (is the ip_vs_%s module available?): %w", scheduler, scheduler, err)
	}
	defer func() { _ = ipvs.DeleteVirtualServer(probeVirtualServer) }()
	after, err := ipvs.ListVirtualServers()
	if err != nil {
		return fmt.Errorf("reading IPVS virtual servers: %w", err)
	}
	for _, vs := range after {
		if vs.Key == probeVirtualServer && vs.Scheduler == scheduler {
			return nil
		}
	}
	return fmt.Errorf("IPVS scheduler %q: a probe virtual server was not created", scheduler)
}
