package diagnose

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
)

// Check 6: drift between what an IPVS kube-proxy sets up and what the kernel holds.

var ipvsSysctlCheck = check{
	ID:    IDIPVSSysctl,
	Title: "IPVS sysctls differ from what kube-proxy sets",
	Needs: []Source{SourceLinks, SourceSysctls, SourceKernelRelease},
	Run:   runIPVSSysctl,
}

// ipvsSysctls are the values upstream's IPVS proxier sets (and ours, pkg/proxy/ipvs/sysctl.go).
var ipvsSysctls = []struct{ key, want, why string }{
	{"net/ipv4/vs/conntrack", "1", "without it iptables never sees IPVS traffic: no masquerade, no filtering"},
	{"net/ipv4/vs/expire_nodest_conn", "1", "flows to a deleted endpoint are dropped at their next packet instead of hanging"},
	{"net/ipv4/vs/expire_quiescent_template", "1", "session-affinity templates of a removed endpoint expire"},
	{"net/ipv4/ip_forward", "1", "the node forwards Service traffic to pods on other nodes"},
}

func runIPVSSysctl(s *Snapshot) []Finding {
	if _, ipvsMode := boundAddrs(s); !ipvsMode {
		return nil
	}
	var ev []string
	for _, c := range ipvsSysctls {
		if v, ok := s.Sysctls[c.key]; ok && v != c.want {
			ev = append(ev, fmt.Sprintf("sysctl %s = %s, kube-proxy sets %s: %s", strings.ReplaceAll(c.key, "/", "."), v, c.want, c.why))
		}
	}
	// conn_reuse_mode=1 stalls reused ports for a second before 5.9 (kubernetes#81775).
	if v, ok := parseKernelRelease(s.KernelRelease); ok && v.less(kernelVersion{5, 9, 0}) {
		if got, ok := s.Sysctls["net/ipv4/vs/conn_reuse_mode"]; ok && got != "0" {
			ev = append(ev, fmt.Sprintf("sysctl net.ipv4.vs.conn_reuse_mode = %s, kube-proxy sets 0 on kernels before 5.9 (this one is %s): a reused source port stalls 1 s", got, s.KernelRelease))
		}
	}
	if len(ev) == 0 {
		return nil
	}
	return []Finding{{
		ID:       IDIPVSSysctl,
		Severity: Warning,
		Title:    "IPVS sysctls differ from what kube-proxy sets",
		Evidence: ev,
		Why: "kube-proxy sets these at start. A value that differs means something reset them after it (a sysctl " +
			"tool, a tuning profile, a network restart), and the Service data path misbehaves as each line says " +
			"until kube-proxy restarts.",
		Fix: "Restart kube-proxy, and find what rewrites the value (sysctl.d files, tuned profiles).",
	}}
}

var strayAddressCheck = check{
	ID:    IDStrayAddress,
	Title: "address on kube-ipvs0 without an IPVS virtual server",
	Needs: []Source{SourceLinks, SourceIPVS},
	Run:   runStrayAddress,
}

func runStrayAddress(s *Snapshot) []Finding {
	bound, ok := boundAddrs(s)
	if !ok {
		return nil
	}
	vss := ipvsAddrs(s)
	var stray []netip.Addr
	for a := range bound {
		if len(vss[a]) == 0 {
			stray = append(stray, a)
		}
	}
	if len(stray) == 0 {
		return nil
	}
	sort.Slice(stray, func(i, j int) bool { return stray[i].Less(stray[j]) })
	var ev []string
	for _, a := range stray {
		ev = append(ev, fmt.Sprintf("%s bound to %s, no IPVS virtual server has it", a, dummyLink))
	}
	return []Finding{{
		ID:       IDStrayAddress,
		Severity: Warning,
		Title:    fmt.Sprintf("%d address(es) on %s serve nothing", len(stray), dummyLink),
		Evidence: ev,
		Why: "Every address on kube-ipvs0 is local to the node: traffic from this node to it never leaves, and " +
			"packets from outside with it as source are dropped as martians. An address without a virtual server " +
			"answers nothing: it only hides whatever really has that address.",
		Fix: "kube-proxy removes addresses it does not need at its next sync (kube-proxy-ipvs within syncPeriod): " +
			"if one stays, something else bound it (ip addr del ADDR dev kube-ipvs0), or kube-proxy is not running.",
	}}
}

var notProgrammedCheck = check{
	ID:    IDNotProgrammed,
	Title: "Service cluster IP without its IPVS virtual server",
	Needs: []Source{SourceLinks, SourceIPVS, SourceServices},
	Run:   runNotProgrammed,
}

func runNotProgrammed(s *Snapshot) []Finding {
	if _, ok := boundAddrs(s); !ok {
		return nil
	}
	have := map[kipvs.Key]bool{}
	for _, vs := range s.IPVS {
		have[vs.Key] = true
	}
	var ev []string
	for i := range s.Services {
		svc := &s.Services[i]
		if svc.Spec.Type == corev1.ServiceTypeExternalName {
			continue
		}
		for _, ip := range svc.Spec.ClusterIPs {
			a, err := netip.ParseAddr(ip)
			if err != nil {
				continue // "None": headless
			}
			for _, p := range svc.Spec.Ports {
				k := kipvs.Key{Address: a, Protocol: kipvs.Protocol(p.Protocol), Port: uint16(p.Port)}
				if k.Protocol == "" {
					k.Protocol = kipvs.TCP
				}
				if !have[k] {
					ev = append(ev, fmt.Sprintf("Service %s port %q: no IPVS virtual server %s", svcName(svc), p.Name, k))
				}
			}
		}
	}
	if len(ev) == 0 {
		return nil
	}
	return []Finding{{
		ID:       IDNotProgrammed,
		Severity: Warning,
		Title:    fmt.Sprintf("%d Service port(s) are not programmed in IPVS", len(ev)),
		Evidence: ev,
		Why: "Connections to these cluster IPs from this node and its pods are refused or time out. kube-proxy may " +
			"still be syncing (a Service created a moment ago), be stuck, or something deleted the virtual servers.",
		Fix: "Run diagnose again after a syncPeriod; if they are still missing read kube-proxy's log and its " +
			"kubeproxy_sync_proxy_rules_last_timestamp_seconds metric, and restart it.",
	}}
}
