package ipvs

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	utiliptables "k8s.io/kubernetes/pkg/util/iptables"

	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/desired"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/internal/fixture"
)

// A packet tracer over the fake kernel: it reads what the proxier programmed (the iptables
// rules as the fake iptables holds them, the ipsets, the IPVS table, the addresses of every
// link) and follows one new connection's first packet through the netfilter hooks and IPVS as
// Linux would, to say where it goes. It models only what our proxier writes; a rule with a
// match, option or target it does not know fails the test rather than being skipped.
//
// The path it follows, by where the packet comes from:
//
//	outside, pod: nat PREROUTING, routing (martian source check, local or not), then
//	  local:  filter INPUT, IPVS (LOCAL_IN), nat INPUT, a host process
//	  other:  filter FORWARD, nat POSTROUTING, out of the node
//	node:     nat OUTPUT, IPVS (LOCAL_OUT), filter OUTPUT, nat POSTROUTING, then
//	  local:  filter INPUT, a host process; other: out of the node
//
// A packet IPVS takes is rewritten to each possible real server in turn and goes through
// filter OUTPUT and nat POSTROUTING (as IPVS's NAT transmit does): masquerading is decided per
// real server, because the hairpin rule depends on which one is picked.

// flowFrom is where a packet enters the node.
type flowFrom int

const (
	// fromOutside arrives on the node's interface (eth0) from another host.
	fromOutside flowFrom = iota
	// fromPod arrives from a pod of this node through the CNI bridge (cni0, bridged).
	fromPod
	// fromNode is sent by a process of the node itself.
	fromNode
)

func (f flowFrom) String() string {
	return [...]string{"outside", "pod", "node"}[f]
}

// flowPacket is the first packet of a new connection.
type flowPacket struct {
	from flowFrom
	// src is the source address; for fromNode an empty src is chosen as the kernel does: the
	// destination itself when it is a local address, else the node's first address on eth0.
	src, dst string
	port     int
	// proto is "tcp" (the default), "udp" or "sctp".
	proto string
	// mark is a packet mark set before the node's rules see it (another agent's).
	mark uint32
}

func (p flowPacket) String() string {
	proto := p.proto
	if proto == "" {
		proto = "tcp"
	}
	src := p.src
	if src == "" {
		src = "(source chosen by the kernel)"
	}
	s := fmt.Sprintf("%s %s -> %s/%s", p.from, src, netip.AddrPortFrom(netip.MustParseAddr(p.dst), uint16(p.port)), proto)
	if p.mark != 0 {
		s += fmt.Sprintf(" mark %#x", p.mark)
	}
	return s
}

// flowKernel is the kernel state read back from the fakes.
type flowKernel struct {
	t testing.TB
	// chains holds the rules of every chain, by table and chain, as iptables-save prints them.
	chains map[string]map[string][]string
	sets   map[string]flowSet
	vs     map[kipvs.Key]kipvs.VirtualServer
	rs     map[kipvs.Key][]kipvs.RealServerStatus
	// local are the addresses of every link (kube-ipvs0, eth0, lo...): the kernel's local
	// routes, which decide whether a packet is delivered on this node.
	local  map[netip.Addr]bool
	nodeIP netip.Addr
}

type flowSet struct {
	typ     string
	entries []string
}

// readFlowKernel reads the fake kernel of e. Every rule of every chain is checked to be one
// the tracer models, traversed by a packet or not.
func readFlowKernel(t testing.TB, e *env) *flowKernel {
	t.Helper()
	k := &flowKernel{
		t:      t,
		chains: map[string]map[string][]string{},
		sets:   map[string]flowSet{},
		vs:     map[kipvs.Key]kipvs.VirtualServer{},
		rs:     map[kipvs.Key][]kipvs.RealServerStatus{},
		local:  map[netip.Addr]bool{},
	}
	for _, table := range []string{desired.TableNAT, desired.TableFilter} {
		var buf bytes.Buffer
		if err := e.ipt.FakeIPTables.SaveInto(utiliptables.Table(table), &buf); err != nil {
			t.Fatalf("saving %s: %v", table, err)
		}
		k.chains[table] = map[string][]string{}
		for _, line := range strings.Split(buf.String(), "\n") {
			switch {
			case strings.HasPrefix(line, ":"):
				name, _, _ := strings.Cut(line[1:], " ")
				k.chains[table][name] = nil
			case strings.HasPrefix(line, "-A "):
				name, _, _ := strings.Cut(line[3:], " ")
				k.chains[table][name] = append(k.chains[table][name], line)
			}
		}
	}
	for _, s := range e.ipset.Sets() {
		k.sets[s.Name] = flowSet{typ: s.Type, entries: e.ipset.Entries(s.Name)}
	}
	for _, vs := range e.ipvs.VirtualServers() {
		k.vs[vs.Key] = vs
		k.rs[vs.Key] = e.ipvs.RealServers(vs.Key)
	}
	for _, link := range e.nd.Links() {
		for _, a := range e.nd.Addresses(link) {
			k.local[a.Unmap()] = true
		}
	}
	if addrs := e.nd.Addresses("eth0"); len(addrs) > 0 {
		k.nodeIP = addrs[0]
	}
	k.validate()
	return k
}

// validate fails on any rule with a match, option or target the tracer does not model.
func (k *flowKernel) validate() {
	k.t.Helper()
	for table, chains := range k.chains {
		for _, rules := range chains {
			for _, rule := range rules {
				target, args, _ := k.match(rule, &flowPkt{proto: "tcp"})
				k.checkTarget(table, rule, target, args)
			}
		}
	}
}

// checkTarget fails on a target the tracer does not model, or one with options it ignores.
func (k *flowKernel) checkTarget(table, rule, target string, args []string) {
	k.t.Helper()
	switch target {
	case "ACCEPT", "DROP", "REJECT", "RETURN":
		if len(args) == 0 {
			return
		}
	case "MARK":
		if len(args) == 2 && slices.Contains([]string{"--or-mark", "--xor-mark", "--set-xmark", "--set-mark"}, args[0]) {
			k.markValue(rule, args[1])
			return
		}
	case "MASQUERADE":
		if table == "nat" && (len(args) == 0 || len(args) == 1 && args[0] == "--random-fully") {
			return
		}
	default:
		if _, ok := k.chains[table][target]; ok && strings.HasPrefix(target, "KUBE-") && len(args) == 0 {
			return
		}
	}
	k.t.Fatalf("target not modelled: %s", rule)
}

func (k *flowKernel) isLocal(a netip.Addr) bool {
	return k.local[a] || a.IsLoopback()
}

// flowPkt is the packet as the tracer follows it.
type flowPkt struct {
	src, dst     netip.Addr
	sport, dport uint16
	proto        string
	mark         uint32
	in           string // the interface it arrived on, "" when sent by the node
	bridged      bool   // arrived through a bridge port (physdev)
	ipvs         *kipvs.Key
}

// flowResult is what happened to a packet.
type flowResult struct {
	// verdict is "IPVS", "host", "DROP", "REJECT", "martian" or "routed".
	verdict string
	// by is the rule that dropped or rejected it.
	by string
	vs kipvs.VirtualServer
	// perRS are the real servers IPVS may pick, each with what happens to it on the way out.
	perRS []flowRS
	// masq is how the packet is masqueraded on its way out of host or routed paths.
	masq string
	// to is where a host or routed packet goes.
	to string
	// steps are the rules that matched and what the kernel decided, for failure messages.
	steps []string
}

type flowRS struct {
	addr string
	// fate is "" (sent), "masq", "masq random-fully" or "DROP by <chain>".
	fate string
}

// String is the result as a row's want spells it:
//
//	IPVS 10.96.0.10:80/TCP -> 10.244.1.5:8080 10.244.2.6:8080 masq random-fully
//	IPVS 10.96.0.10:80/TCP -> 10.244.1.5:8080 10.244.2.6:8080[masq]   (only when fates differ)
//	IPVS 10.96.0.12:80/TCP persistent 10800s -> ...
//	IPVS 10.96.0.11:80/TCP -> none: rejected
//	host 192.168.0.10:22 | routed 192.168.0.11:80 masq | DROP in KUBE-... | REJECT in KUBE-...
//	martian source 203.0.113.7
func (r flowResult) String() string {
	switch r.verdict {
	case "IPVS":
		s := "IPVS " + r.vs.Key.String()
		if r.vs.Flags&kipvs.FlagPersistent != 0 {
			s += fmt.Sprintf(" persistent %ds", r.vs.Timeout)
		}
		if len(r.perRS) == 0 {
			return s + " -> none: rejected"
		}
		s += " ->"
		same := true
		for _, rs := range r.perRS {
			same = same && rs.fate == r.perRS[0].fate
		}
		for _, rs := range r.perRS {
			s += " " + rs.addr
			if !same && rs.fate != "" {
				s += "[" + rs.fate + "]"
			}
		}
		if same && r.perRS[0].fate != "" {
			s += " " + r.perRS[0].fate
		}
		return s
	case "host", "routed":
		s := r.verdict + " " + r.to
		if r.masq != "" {
			s += " " + r.masq
		}
		return s
	case "martian":
		return "martian source " + r.to
	default:
		return r.verdict + " in " + r.by
	}
}

// trace follows p through the kernel state.
func (k *flowKernel) trace(fp flowPacket) flowResult {
	k.t.Helper()
	proto := fp.proto
	if proto == "" {
		proto = "tcp"
	}
	p := &flowPkt{
		dst:   netip.MustParseAddr(fp.dst),
		sport: 40000,
		dport: uint16(fp.port),
		proto: proto,
		mark:  fp.mark,
	}
	switch {
	case fp.src != "":
		p.src = netip.MustParseAddr(fp.src)
	case fp.from != fromNode:
		k.t.Fatalf("packet %s: only a packet from the node may leave its source to the kernel", fp)
	case k.isLocal(p.dst):
		p.src = p.dst
	default:
		p.src = k.nodeIP
	}
	r := &flowResult{}
	switch fp.from {
	case fromOutside, fromPod:
		if fp.from == fromOutside {
			p.in = "eth0"
		} else {
			p.in, p.bridged = "cni0", true
		}
		if v, by := k.hook(r, "nat", "PREROUTING", p); v != "" {
			return k.end(r, v, by)
		}
		if k.isLocal(p.src) {
			r.step("routing: the source %s is a local address: dropped as martian", p.src)
			r.verdict, r.to = "martian", p.src.String()
			return *r
		}
		if !k.isLocal(p.dst) {
			r.step("routing: %s is not local: forwarded", p.dst)
			if v, by := k.hook(r, "filter", "FORWARD", p); v != "" {
				return k.end(r, v, by)
			}
			return k.leave(r, p)
		}
		r.step("routing: %s is local: input", p.dst)
		if v, by := k.hook(r, "filter", "INPUT", p); v != "" {
			return k.end(r, v, by)
		}
		if vs, ok := k.lookupVS(p); ok {
			return k.ipvs(r, p, vs)
		}
		if v, by := k.hook(r, "nat", "INPUT", p); v != "" {
			return k.end(r, v, by)
		}
		r.step("no virtual server: delivered to a host process")
		r.verdict, r.to = "host", netip.AddrPortFrom(p.dst, p.dport).String()
		return *r
	default:
		if v, by := k.hook(r, "nat", "OUTPUT", p); v != "" {
			return k.end(r, v, by)
		}
		if vs, ok := k.lookupVS(p); ok {
			return k.ipvs(r, p, vs)
		}
		if v, by := k.hook(r, "filter", "OUTPUT", p); v != "" {
			return k.end(r, v, by)
		}
		if !k.isLocal(p.dst) {
			return k.leave(r, p)
		}
		if v, by := k.hook(r, "nat", "POSTROUTING", p); v != "" {
			return k.end(r, v, by)
		}
		r.step("routing: %s is local: looped back to input", p.dst)
		if v, by := k.hook(r, "filter", "INPUT", p); v != "" {
			return k.end(r, v, by)
		}
		r.step("no virtual server: delivered to a host process")
		r.verdict, r.to = "host", netip.AddrPortFrom(p.dst, p.dport).String()
		return *r
	}
}

func (r *flowResult) step(format string, args ...any) {
	r.steps = append(r.steps, fmt.Sprintf(format, args...))
}

// end records a DROP or REJECT.
func (k *flowKernel) end(r *flowResult, verdict, by string) flowResult {
	r.verdict, r.by = verdict, by
	return *r
}

// leave sends a packet out of the node through nat POSTROUTING.
func (k *flowKernel) leave(r *flowResult, p *flowPkt) flowResult {
	if v, by := k.hook(r, "nat", "POSTROUTING", p); v != "" {
		return k.end(r, v, by)
	}
	r.verdict, r.to = "routed", netip.AddrPortFrom(p.dst, p.dport).String()
	return *r
}

// lookupVS is IPVS's lookup of a virtual server by protocol, address and port.
func (k *flowKernel) lookupVS(p *flowPkt) (kipvs.VirtualServer, bool) {
	vs, ok := k.vs[kipvs.Key{Address: p.dst, Protocol: kipvs.Protocol(strings.ToUpper(p.proto)), Port: p.dport}]
	return vs, ok
}

// ipvs schedules p on vs: every real server of weight > 0 is possible (the scheduler's choice
// is not emulated); with none, IPVS answers port unreachable and drops the packet.
func (k *flowKernel) ipvs(r *flowResult, p *flowPkt, vs kipvs.VirtualServer) flowResult {
	r.verdict, r.vs = "IPVS", vs
	r.step("IPVS: virtual server %s (scheduler %s, flags %#x)", vs.Key, vs.Scheduler, uint32(vs.Flags))
	steps := r.steps
	for _, rs := range k.rs[vs.Key] {
		if rs.Weight <= 0 {
			r.step("IPVS: real server %s has weight %d: never scheduled", rs.RealServer, rs.Weight)
			continue
		}
		q := *p
		q.dst, q.dport = rs.Address.Unmap(), rs.Port
		key := vs.Key
		q.ipvs = &key
		sub := &flowResult{}
		sub.step("IPVS: to real server %s", rs.RealServer)
		fate := ""
		if v, by := k.hook(sub, "filter", "OUTPUT", &q); v != "" {
			fate = v + " by " + by
		} else if v, by := k.hook(sub, "nat", "POSTROUTING", &q); v != "" {
			fate = v + " by " + by
		} else {
			fate = sub.masq
		}
		r.perRS = append(r.perRS, flowRS{addr: rs.RealServer.String(), fate: fate})
		steps = append(steps, sub.steps...)
	}
	if len(r.perRS) == 0 {
		steps = append(steps, "IPVS: no real server available: port unreachable, dropped")
	}
	r.steps = steps
	return *r
}

// hook runs a built-in chain; it returns "DROP" or "REJECT" and the deciding rule's chain, or
// "" when the packet goes on (ACCEPT, the policy, or a MASQUERADE recorded in r.masq).
func (k *flowKernel) hook(r *flowResult, table, chain string, p *flowPkt) (string, string) {
	k.t.Helper()
	if _, ok := k.chains[table][chain]; !ok {
		return "", ""
	}
	v, by := k.run(r, table, chain, p, 0)
	switch v {
	case "DROP", "REJECT":
		return v, by
	}
	return "", ""
}

// run walks one chain: it returns "ACCEPT", "DROP", "REJECT", "MASQUERADE" (terminal, with
// the chain that decided) or "" when the chain ran out or returned.
func (k *flowKernel) run(r *flowResult, table, chain string, p *flowPkt, depth int) (string, string) {
	k.t.Helper()
	if depth > 16 {
		k.t.Fatalf("chain loop at %s/%s", table, chain)
	}
	rules, ok := k.chains[table][chain]
	if !ok {
		k.t.Fatalf("jump to chain %s that table %s does not have", chain, table)
	}
	for _, rule := range rules {
		target, targetArgs, matched := k.match(rule, p)
		if !matched {
			continue
		}
		r.step("%s: %s", table, rule)
		k.checkTarget(table, rule, target, targetArgs)
		switch target {
		case "ACCEPT":
			return "ACCEPT", chain
		case "DROP", "REJECT":
			return target, chain
		case "RETURN":
			return "", chain
		case "MARK":
			p.mark = k.applyMark(rule, p.mark, targetArgs)
		case "MASQUERADE":
			r.masq = "masq"
			if len(targetArgs) == 1 {
				r.masq = "masq random-fully"
			}
			return "MASQUERADE", chain
		default:
			if v, by := k.run(r, table, target, p, depth+1); v != "" {
				return v, by
			}
		}
	}
	return "", chain
}

func (k *flowKernel) applyMark(rule string, mark uint32, args []string) uint32 {
	if len(args) != 2 {
		k.t.Fatalf("MARK options not modelled: %s", rule)
	}
	v, m := k.markValue(rule, args[1])
	switch args[0] {
	case "--or-mark":
		return mark | v
	case "--xor-mark":
		return mark ^ v
	case "--set-xmark":
		return (mark &^ m) ^ v
	case "--set-mark":
		return (mark &^ m) | v
	}
	k.t.Fatalf("MARK option not modelled: %s", rule)
	return 0
}

// markValue parses "value[/mask]"; the mask defaults to all ones.
func (k *flowKernel) markValue(rule, s string) (uint32, uint32) {
	vs, ms, hasMask := strings.Cut(s, "/")
	v, err := strconv.ParseUint(vs, 0, 32)
	m := uint64(0xffffffff)
	if err == nil && hasMask {
		m, err = strconv.ParseUint(ms, 0, 32)
	}
	if err != nil {
		k.t.Fatalf("bad mark %q in %s", s, rule)
	}
	return uint32(v), uint32(m)
}

// words splits a saved rule into its arguments; a double-quoted argument may hold spaces.
func (k *flowKernel) words(rule string) []string {
	w, err := fixture.SplitRestoreWords(rule)
	if err != nil {
		k.t.Fatalf("cannot split rule %s: %v", rule, err)
	}
	return w
}

// flowModules are the match modules the tracer knows, with their options.
var flowModules = map[string][]string{
	"comment":   {"--comment"},
	"set":       {"--match-set"},
	"addrtype":  {"--src-type", "--dst-type"},
	"mark":      {"--mark"},
	"physdev":   {"--physdev-is-in"},
	"conntrack": {"--ctstate"},
	"ipvs":      {"--ipvs", "--vaddr", "--vproto", "--vport"},
	"tcp":       {"--dport", "--sport"},
	"udp":       {"--dport", "--sport"},
	"sctp":      {"--dport", "--sport"},
}

// match evaluates every match of a rule against p and returns its target with the target's
// options. Every argument must be understood, whether or not an earlier match failed.
func (k *flowKernel) match(rule string, p *flowPkt) (string, []string, bool) {
	k.t.Helper()
	w := k.words(rule)
	if len(w) < 2 || w[0] != "-A" {
		k.t.Fatalf("not a rule: %s", rule)
	}
	ok := true
	loaded := map[string]bool{}
	neg := false
	fail := func(why string) {
		k.t.Fatalf("%s in rule: %s", why, rule)
	}
	arg := func(i int) string {
		if i >= len(w) {
			fail("missing argument")
		}
		return w[i]
	}
	need := func(b bool) {
		if b == neg {
			ok = false
		}
		neg = false
	}
	for i := 2; i < len(w); i++ {
		opt := w[i]
		if opt == "!" {
			neg = true
			continue
		}
		if strings.HasPrefix(opt, "--") && !k.optionLoaded(loaded, opt) {
			fail("option " + opt + " of no loaded module")
		}
		switch opt {
		case "-j":
			if neg {
				fail("negated target")
			}
			return arg(i + 1), w[i+2:], ok
		case "-m":
			m := arg(i + 1)
			if _, known := flowModules[m]; !known {
				fail("match module " + m + " not modelled")
			}
			loaded[m] = true
			i++
		case "-s", "-d":
			pfx := k.prefix(rule, arg(i+1))
			a := p.src
			if opt == "-d" {
				a = p.dst
			}
			need(pfx.Contains(a))
			i++
		case "-i":
			need(p.in == arg(i+1))
			i++
		case "-p":
			need(p.proto == arg(i+1))
			i++
		case "--comment":
			if neg {
				fail("negated comment")
			}
			// The fake keeps the jump rules' comments unquoted: skip to the next option.
			i++
			for i+1 < len(w) && !strings.HasPrefix(w[i+1], "-") && w[i+1] != "!" {
				i++
			}
		case "--match-set":
			need(k.inSet(rule, arg(i+1), arg(i+2), p))
			i += 2
		case "--src-type", "--dst-type":
			if arg(i+1) != "LOCAL" {
				fail("address type " + w[i+1] + " not modelled")
			}
			a := p.src
			if opt == "--dst-type" {
				a = p.dst
			}
			need(k.isLocal(a))
			i++
		case "--mark":
			v, m := k.markValue(rule, arg(i+1))
			need(p.mark&m == v)
			i++
		case "--physdev-is-in":
			need(p.bridged)
		case "--ctstate":
			// Every traced packet opens a new connection.
			need(slices.Contains(strings.Split(arg(i+1), ","), "NEW"))
			i++
		case "--ipvs":
			need(p.ipvs != nil)
		case "--vaddr":
			need(p.ipvs != nil && k.prefix(rule, arg(i+1)).Contains(p.ipvs.Address))
			i++
		case "--vproto":
			need(p.ipvs != nil && strings.EqualFold(string(p.ipvs.Protocol), arg(i+1)))
			i++
		case "--vport":
			need(p.ipvs != nil && strconv.Itoa(int(p.ipvs.Port)) == arg(i+1))
			i++
		case "--dport", "--sport":
			port := p.dport
			if opt == "--sport" {
				port = p.sport
			}
			need(strconv.Itoa(int(port)) == arg(i+1))
			i++
		default:
			fail("argument " + opt + " not modelled")
		}
	}
	fail("no target")
	return "", nil, false
}

func (k *flowKernel) optionLoaded(loaded map[string]bool, opt string) bool {
	for m := range loaded {
		if slices.Contains(flowModules[m], opt) {
			return true
		}
	}
	return false
}

// prefix parses an address or a network as iptables takes it.
func (k *flowKernel) prefix(rule, s string) netip.Prefix {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked()
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		k.t.Fatalf("bad address %q in %s", s, rule)
	}
	return netip.PrefixFrom(a, a.BitLen())
}

// inSet is the set match: each of the set type's dimensions is compared with the packet's
// source or destination as the direction flags say.
func (k *flowKernel) inSet(rule, name, flags string, p *flowPkt) bool {
	s, ok := k.sets[name]
	if !ok {
		k.t.Fatalf("set %s does not exist (iptables-restore would have failed): %s", name, rule)
	}
	dims := strings.Split(s.typ[strings.Index(s.typ, ":")+1:], ",")
	dirs := strings.Split(flags, ",")
	if len(dirs) != len(dims) {
		k.t.Fatalf("set %s of type %s matched with %q: dimensions not modelled: %s", name, s.typ, flags, rule)
	}
	addr := func(dir string) netip.Addr {
		if dir == "src" {
			return p.src
		}
		return p.dst
	}
	port := func(dir string) uint16 {
		if dir == "src" {
			return p.sport
		}
		return p.dport
	}
	for _, entry := range s.entries {
		parts := strings.Split(entry, ",")
		if len(parts) != len(dims) {
			k.t.Fatalf("entry %q of set %s (%s) not modelled", entry, name, s.typ)
		}
		hit := true
		for i, dim := range dims {
			switch {
			case dim == "ip":
				a, err := netip.ParseAddr(parts[i])
				if err != nil {
					k.t.Fatalf("entry %q of set %s: %v", entry, name, err)
				}
				hit = hit && a == addr(dirs[i])
			case dim == "net":
				hit = hit && k.prefix(rule, parts[i]).Contains(addr(dirs[i]))
			case dim == "port" && s.typ == desired.TypeBitmapPort:
				hit = hit && parts[i] == strconv.Itoa(int(port(dirs[i])))
			case dim == "port":
				proto, num, found := strings.Cut(parts[i], ":")
				if !found {
					k.t.Fatalf("entry %q of set %s: port without protocol", entry, name)
				}
				hit = hit && proto == p.proto && num == strconv.Itoa(int(port(dirs[i])))
			default:
				k.t.Fatalf("set type %s not modelled", s.typ)
			}
		}
		if hit {
			return true
		}
	}
	return false
}

// fatalCatcher stands for the test in the tracer, to see that it fails and why.
type fatalCatcher struct {
	testing.TB
	msg string
}

func (f *fatalCatcher) Helper() {}

func (f *fatalCatcher) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(f)
}

// fatalOf runs fn with a fatalCatcher and returns the message it failed with ("" if none).
func fatalOf(t *testing.T, fn func(tb testing.TB)) (msg string) {
	c := &fatalCatcher{TB: t}
	defer func() {
		if r := recover(); r != nil {
			if r != c {
				panic(r)
			}
			msg = c.msg
		}
	}()
	fn(c)
	return ""
}

// TestPacketFlowRefusesWhatItDoesNotModel: a rule the tracer cannot evaluate fails the test,
// naming the rule, whether or not a traced packet would reach it.
func TestPacketFlowRefusesWhatItDoesNotModel(t *testing.T) {
	const anchor = `-A KUBE-SERVICES -s 127.0.0.0/8 -j RETURN`
	for name, extra := range map[string]struct{ table, rule string }{
		"unknown match module": {desired.TableNAT, `-A KUBE-SERVICES -m statistic --mode random --probability 0.5 -j RETURN`},
		"unknown target":       {desired.TableNAT, `-A KUBE-SERVICES -d 10.96.0.99/32 -j DNAT --to-destination 10.244.1.5:8080`},
		"unknown address type": {desired.TableNAT, `-A KUBE-SERVICES -m addrtype --dst-type UNICAST -j RETURN`},
		"set flags not matching the set's dimensions": {desired.TableNAT,
			`-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst -j RETURN`},
		"option of a module not loaded": {desired.TableNAT, `-A KUBE-SERVICES --dport 80 -j RETURN`},
		"MASQUERADE with a port range":  {desired.TableNAT, `-A KUBE-POSTROUTING -j MASQUERADE --to-ports 1024-2047`},
		"unknown option":                {desired.TableFilter, `-A KUBE-FORWARD -f -j ACCEPT`},
	} {
		t.Run(name, func(t *testing.T) {
			e := flowEnv(t, nil)
			e.start(flowWeb()...)
			line := anchor
			if extra.table == desired.TableFilter {
				line = `-A KUBE-SOURCE-RANGES-FIREWALL -j DROP`
			}
			editTable(t, e, extra.table, line, line+"\n"+extra.rule)
			msg := fatalOf(t, func(tb testing.TB) { readFlowKernel(tb, e) })
			if !strings.Contains(msg, extra.rule) {
				t.Errorf("reading a kernel with %q: failure %q, want one naming the rule", extra.rule, msg)
			}
		})
	}
}
