package desired

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	proxyutil "k8s.io/kubernetes/pkg/proxy/util"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/forkconfig"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/objects"
	forkiptables "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/iptables"
)

// Our iptables chains.
const (
	chainServices             = "KUBE-SERVICES"
	chainProxyFirewall        = "KUBE-PROXY-FIREWALL"
	chainSourceRangesFirewall = "KUBE-SOURCE-RANGES-FIREWALL"
	chainPostrouting          = "KUBE-POSTROUTING"
	chainMarkMasq             = "KUBE-MARK-MASQ"
	chainNodePort             = "KUBE-NODE-PORT"
	chainForward              = "KUBE-FORWARD"
	chainLoadBalancer         = "KUBE-LOAD-BALANCER"
	chainIPVSFilter           = "KUBE-IPVS-FILTER"
	chainIPVSOutFilter        = "KUBE-IPVS-OUT-FILTER"

	TableNAT    = "nat"
	TableFilter = "filter"
)

// TableChain names one of our chains.
type TableChain struct{ Table, Chain string }

// kubeChains are our chains in the order upstream declares them in the restore input (and
// ensures them before linking them).
var kubeChains = []TableChain{
	{TableNAT, chainServices},
	{TableNAT, chainPostrouting},
	{TableNAT, chainNodePort},
	{TableNAT, chainLoadBalancer},
	{TableNAT, chainMarkMasq},
	{TableFilter, chainForward},
	{TableFilter, chainNodePort},
	{TableFilter, chainProxyFirewall},
	{TableFilter, chainSourceRangesFirewall},
	{TableFilter, chainIPVSFilter},
	{TableFilter, chainIPVSOutFilter},
}

// KubeChains are our chains in the order upstream declares them in the restore input (and
// ensures them before linking them).
func KubeChains() []TableChain { return slices.Clone(kubeChains) }

// JumpRule is a rule in a built-in chain that sends traffic into one of ours. These are not
// in the restore text (which only owns our chains): the reconciler ensures each one is
// present, prepended to SourceChain, with the arguments Args returns.
type JumpRule struct {
	Table, SourceChain, Chain, Comment string
	// Extra are match arguments between the comment and the jump (none upstream).
	Extra []string
}

// Args are the rule's arguments after "-I SourceChain", as iptables takes them (no quoting:
// they are passed as argv, not through iptables-restore).
func (j JumpRule) Args() []string {
	args := []string{"-m", "comment", "--comment", j.Comment}
	args = append(args, j.Extra...)
	return append(args, "-j", j.Chain)
}

// JumpRules are the links from built-in chains, in the order upstream ensures them. Both
// families have the same ones, so they take no family.
func JumpRules() []JumpRule {
	return []JumpRule{
		{Table: TableNAT, SourceChain: "OUTPUT", Chain: chainServices, Comment: "kubernetes service portals"},
		{Table: TableNAT, SourceChain: "PREROUTING", Chain: chainServices, Comment: "kubernetes service portals"},
		{Table: TableNAT, SourceChain: "POSTROUTING", Chain: chainPostrouting, Comment: "kubernetes postrouting rules"},
		{Table: TableFilter, SourceChain: "FORWARD", Chain: chainForward, Comment: "kubernetes forwarding rules"},
		{Table: TableFilter, SourceChain: "INPUT", Chain: chainNodePort, Comment: "kubernetes health check rules"},
		{Table: TableFilter, SourceChain: "INPUT", Chain: chainProxyFirewall, Comment: "kube-proxy firewall rules"},
		{Table: TableFilter, SourceChain: "FORWARD", Chain: chainProxyFirewall, Comment: "kube-proxy firewall rules"},
		{Table: TableFilter, SourceChain: "INPUT", Chain: chainIPVSFilter, Comment: "kubernetes ipvs access filter"},
		{Table: TableFilter, SourceChain: "OUTPUT", Chain: chainIPVSOutFilter, Comment: "kubernetes ipvs access filter"},
	}
}

// GlobalConfig is what the iptables rules depend on besides which sets have entries.
type GlobalConfig struct {
	Family v1.IPFamily
	// MasqueradeBit is --iptables-masquerade-bit (upstream default 14).
	MasqueradeBit int
	// MasqueradeAll is --masquerade-all: masquerade all cluster IP traffic.
	MasqueradeAll bool
	// LocalDetector tells pod traffic from the rest (--detect-local-mode and the cluster CIDR
	// behind it); the no-op detector makes the cluster IP rule fall back to src,dst matching.
	LocalDetector proxyutil.LocalTrafficDetector
	// NodeBlockedLoadBalancers is the union of NodeBlockedLoadBalancers over all service
	// ports: each gets a DROP in KUBE-IPVS-OUT-FILTER.
	NodeBlockedLoadBalancers []objects.Key
	// RandomFully is --masquerade-random-fully; "" stands for always (upstream's rules).
	RandomFully forkconfig.RandomFully
	// VXLANPorts are the UDP destination ports of the node's VXLAN links; only auto uses
	// them.
	VXLANPorts []uint16
}

// MasqueradeMark is the packet mark for a masquerade bit, spelled as upstream spells it
// ("%#08x": Go pads the digits, not the prefix, so bit 14 is "0x00004000") so that our rules
// compare equal to upstream's.
func MasqueradeMark(bit int) string {
	return fmt.Sprintf("%#08x", 1<<uint(bit))
}

// setChainRules are the rules that only match one set, in upstream's order; each is left out
// while its set is empty. The local sets come before their non-local twins so that RETURN
// wins over the masquerade mark.
var setChainRules = []struct {
	set, table, from, to, match, protocol string
}{
	{SetLoopBack, TableNAT, chainPostrouting, "MASQUERADE", "dst,dst,src", ""},
	{SetLoadBalancer, TableNAT, chainServices, chainLoadBalancer, "dst,dst", ""},
	{SetLoadBalancerLocal, TableNAT, chainLoadBalancer, "RETURN", "dst,dst", ""},
	{SetNodePortLocalTCP, TableNAT, chainNodePort, "RETURN", "dst", "tcp"},
	{SetNodePortTCP, TableNAT, chainNodePort, chainMarkMasq, "dst", "tcp"},
	{SetNodePortLocalUDP, TableNAT, chainNodePort, "RETURN", "dst", "udp"},
	{SetNodePortUDP, TableNAT, chainNodePort, chainMarkMasq, "dst", "udp"},
	{SetNodePortLocalSCTP, TableNAT, chainNodePort, "RETURN", "dst,dst", "sctp"},
	{SetNodePortSCTP, TableNAT, chainNodePort, chainMarkMasq, "dst,dst", "sctp"},
	{SetLoadBalancerFW, TableFilter, chainProxyFirewall, chainSourceRangesFirewall, "dst,dst", ""},
	{SetLoadBalancerSourceCIDR, TableFilter, chainSourceRangesFirewall, "RETURN", "dst,dst,src", ""},
	{SetLoadBalancerSourceIP, TableFilter, chainSourceRangesFirewall, "RETURN", "dst,dst,src", ""},
}

// lines is an iptables-restore fragment, one rule per line, arguments joined by one space.
type lines struct{ b strings.Builder }

func (l *lines) add(args ...string) {
	l.b.WriteString(strings.Join(args, " "))
	l.b.WriteByte('\n')
}

// quoted is a comment as iptables-restore needs it: one argument despite its spaces.
func quoted(s string) string { return `"` + s + `"` }

// DesiredGlobal is the iptables-restore text for our chains in the nat and filter tables,
// rule for rule what upstream writes. nonEmpty reports whether a set (by its name in
// cfg.Family, as SetName spells it) has entries after all service ports are summed up: rules
// matching an empty set are left out.
func DesiredGlobal(cfg *GlobalConfig, nonEmpty func(setName string) bool) GlobalState {
	family := cfg.Family
	name := func(base string) string { return SetName(family, base) }
	has := func(base string) bool { return nonEmpty != nil && nonEmpty(name(base)) }
	comment := func(base string) string { return quoted(setComment(base)) }
	mark := MasqueradeMark(cfg.MasqueradeBit)

	var natChains, natRules, filterChains, filterRules lines
	natChains.add("*nat")
	filterChains.add("*filter")
	for _, c := range kubeChains {
		if c.Table == TableNAT {
			natChains.add(":" + c.Chain + " - [0:0]")
		} else {
			filterChains.add(":" + c.Chain + " - [0:0]")
		}
	}

	// Connections to localhost never reach a service.
	loopback := "127.0.0.0/8"
	if family == v1.IPv6Protocol {
		loopback = "::1/128"
	}
	natRules.add("-A", chainServices, "-s", loopback, "-j", "RETURN")

	for _, r := range setChainRules {
		if !has(r.set) {
			continue
		}
		args := []string{"-A", r.from}
		if r.protocol != "" {
			args = append(args, "-p", r.protocol)
		}
		args = append(args, "-m", "comment", "--comment", comment(r.set),
			"-m", "set", "--match-set", name(r.set), r.match, "-j", r.to)
		if r.table == TableFilter {
			filterRules.add(args...)
		} else {
			natRules.add(args...)
		}
	}

	if has(SetClusterIP) {
		args := []string{"-A", chainServices, "-m", "comment", "--comment", comment(SetClusterIP),
			"-m", "set", "--match-set", name(SetClusterIP)}
		switch {
		case cfg.MasqueradeAll:
			natRules.add(append(args, "dst,dst", "-j", chainMarkMasq)...)
		case cfg.LocalDetector != nil && cfg.LocalDetector.IsImplemented():
			// Off-cluster clients routed to a service VIP may be answered from another node.
			args = append(args, "dst,dst")
			args = append(args, cfg.LocalDetector.IfNotLocal()...)
			natRules.add(append(args, "-j", chainMarkMasq)...)
		default:
			// Without a pod detector, catch node-originated connections that picked a VIP on
			// kube-ipvs0 as their source address.
			natRules.add(append(args, "src,dst", "-j", chainMarkMasq)...)
		}
	}

	// External IPs accept traffic from off the node (not a bridged container, not a local
	// process) and traffic to addresses the node routes locally (e.g. cloud LB VIPs).
	acceptExternal := func(match []string) {
		natRules.add(concat(match, "-m", "physdev", "!", "--physdev-is-in",
			"-m", "addrtype", "!", "--src-type", "LOCAL", "-j", "ACCEPT")...)
		natRules.add(concat(match, "-m", "addrtype", "--dst-type", "LOCAL", "-j", "ACCEPT")...)
	}
	if has(SetExternalIP) {
		match := []string{"-A", chainServices, "-m", "comment", "--comment", comment(SetExternalIP),
			"-m", "set", "--match-set", name(SetExternalIP), "dst,dst"}
		natRules.add(concat(match, "-j", chainMarkMasq)...)
		acceptExternal(match)
	}
	if has(SetExternalIPLocal) {
		acceptExternal([]string{"-A", chainServices, "-m", "comment", "--comment", comment(SetExternalIPLocal),
			"-m", "set", "--match-set", name(SetExternalIPLocal), "dst,dst"})
	}

	natRules.add("-A", chainServices, "-m", "addrtype", "--dst-type", "LOCAL", "-j", chainNodePort)
	natRules.add("-A", chainLoadBalancer, "-j", chainMarkMasq)
	filterRules.add("-A", chainSourceRangesFirewall, "-j", "DROP")

	// With IPVS a node-originated packet to a VIP has the VIP as source and destination.
	for _, k := range sortedKeys(cfg.NodeBlockedLoadBalancers) {
		a := k.Address.Unmap().String()
		filterRules.add("-A", chainIPVSOutFilter, "-s", a, "-m", "ipvs", "--vaddr", a,
			"--vproto", strings.ToLower(string(k.Protocol)), "--vport", strconv.Itoa(int(k.Port)), "-j", "DROP")
	}

	// Accept IPVS traffic at the end of KUBE-SERVICES so later rules cannot drop it.
	for _, s := range []string{SetClusterIP, SetLoadBalancer} {
		if has(s) {
			natRules.add("-A", chainServices, "-m", "set", "--match-set", name(s), "dst,dst", "-j", "ACCEPT")
		}
	}

	// Forward what we marked for masquerading even when FORWARD's policy is DROP, and the
	// rest of those connections.
	filterRules.add("-A", chainForward, "-m", "comment", "--comment", quoted("kubernetes forwarding rules"),
		"-m", "mark", "--mark", mark+"/"+mark, "-j", "ACCEPT")
	filterRules.add("-A", chainForward, "-m", "comment", "--comment", quoted("kubernetes forwarding conntrack rule"),
		"-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")

	filterRules.add("-A", chainNodePort, "-m", "comment", "--comment", comment(SetHealthCheckNodePort),
		"-m", "set", "--match-set", name(SetHealthCheckNodePort), "dst", "-j", "ACCEPT")

	// Addresses on kube-ipvs0 are local, so without this every host port would answer on
	// every VIP (kubernetes#72236): only the service ports get through.
	filterRules.add("-A", chainIPVSFilter, "-m", "set", "--match-set", name(SetLoadBalancer), "dst,dst", "-j", "RETURN")
	filterRules.add("-A", chainIPVSFilter, "-m", "set", "--match-set", name(SetClusterIP), "dst,dst", "-j", "RETURN")
	filterRules.add("-A", chainIPVSFilter, "-m", "set", "--match-set", name(SetExternalIP), "dst,dst", "-j", "RETURN")
	filterRules.add("-A", chainIPVSFilter, "-m", "set", "--match-set", name(SetExternalIPLocal), "dst,dst", "-j", "RETURN")
	filterRules.add("-A", chainIPVSFilter, "-m", "set", "--match-set", name(SetHealthCheckNodePort), "dst", "-j", "RETURN")
	filterRules.add("-A", chainIPVSFilter, "-m", "conntrack", "--ctstate", "NEW",
		"-m", "set", "--match-set", name(SetIPVSIPs), "dst", "-j", "REJECT")

	natRules.add("-A", chainPostrouting, "-m", "mark", "!", "--mark", mark+"/"+mark, "-j", "RETURN")
	// Clear the mark so a packet that goes through the stack again is not masqueraded twice.
	natRules.add("-A", chainPostrouting, "-j", "MARK", "--xor-mark", mark)
	masquerade := []string{"-A", chainPostrouting, "-m", "comment", "--comment", quoted("kubernetes service traffic requiring SNAT"),
		"-j", "MASQUERADE", "--random-fully"}
	switch cfg.RandomFully {
	case forkconfig.RandomFullyNever:
		masquerade = masquerade[:len(masquerade)-1]
	case forkconfig.RandomFullyAuto:
		// The outer packet of a VXLAN tunnel keeps its source port (see VXLANMasqueradeRule).
		for _, port := range forkiptables.SortedPorts(cfg.VXLANPorts) {
			natRules.add(concat([]string{"-A", chainPostrouting}, forkiptables.VXLANMasqueradeRule(port)...)...)
		}
	}
	natRules.add(masquerade...)
	natRules.add("-A", chainMarkMasq, "-j", "MARK", "--or-mark", mark)

	filterRules.add("COMMIT")
	natRules.add("COMMIT")

	var out strings.Builder
	out.WriteString(natChains.b.String())
	out.WriteString(natRules.b.String())
	out.WriteString(filterChains.b.String())
	out.WriteString(filterRules.b.String())
	return GlobalState{IPTables: []byte(out.String())}
}

func concat(a []string, b ...string) []string {
	return append(append(make([]string, 0, len(a)+len(b)), a...), b...)
}

// sortedKeys orders the blocked VIPs (upstream follows its map order, which is random) and
// drops repeats, which would only be duplicate rules.
func sortedKeys(keys []objects.Key) []objects.Key {
	seen := map[objects.Key]bool{}
	var out []objects.Key
	for _, k := range keys {
		k.Address = k.Address.Unmap()
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return keyLess(out[i], out[j]) })
	return out
}

func keyLess(a, b objects.Key) bool {
	if c := a.Address.Compare(b.Address); c != 0 {
		return c < 0
	}
	if a.Protocol != b.Protocol {
		return a.Protocol < b.Protocol
	}
	return a.Port < b.Port
}
