package diagnose

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// rule is one "-A CHAIN ..." line of iptables-save, split into its matches and its target.
type rule struct {
	Line   string // as saved, for evidence
	Chain  string
	Conds  []cond
	Target string              // -j or -g; "" when none (a counting rule)
	TOpts  map[string][]string // the target's options: "--random-fully" -> nil, "--xor-mark" -> ["0x4000"]
	Goto   bool                // -g: the chain does not return here
}

type cond struct {
	Opt  string // "-p", "--dport", "--mark", "-s", "--match-set", ...
	Vals []string
	Neg  bool
}

// chains is one table: its chains' rules in order.
type chains map[string][]rule

// parseSave reads the rules of one table from iptables-save output. Lines it cannot split are
// skipped: diagnose reads other programs' rules and must not stop on one it does not know.
func parseSave(text string) chains {
	out := chains{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, ":") {
			name, _, _ := strings.Cut(line[1:], " ")
			if _, ok := out[name]; !ok {
				out[name] = nil
			}
			continue
		}
		if !strings.HasPrefix(line, "-A ") {
			continue
		}
		toks, err := splitRule(line)
		if err != nil || len(toks) < 2 {
			continue
		}
		out[toks[1]] = append(out[toks[1]], newRule(line, toks[1], toks[2:]))
	}
	return out
}

// splitRule splits a saved rule into words, honouring the double quotes iptables-save puts
// around comments (with \" and \\ escaped inside).
func splitRule(line string) ([]string, error) {
	var toks []string
	var cur strings.Builder
	inQuote, have := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case inQuote && c == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case c == '"':
			inQuote, have = !inQuote, true
		case !inQuote && (c == ' ' || c == '\t'):
			if have {
				toks = append(toks, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	if inQuote {
		return nil, fmt.Errorf("unterminated quote in %q", line)
	}
	if have {
		toks = append(toks, cur.String())
	}
	return toks, nil
}

func isOpt(s string) bool { return len(s) > 1 && s[0] == '-' }

func newRule(line, chain string, toks []string) rule {
	r := rule{Line: line, Chain: chain, TOpts: map[string][]string{}}
	neg := false
	inTarget := false
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if t == "!" {
			neg = true
			continue
		}
		if !isOpt(t) {
			continue // a stray value; options consume theirs below
		}
		var vals []string
		for i+1 < len(toks) && !isOpt(toks[i+1]) && toks[i+1] != "!" {
			i++
			vals = append(vals, toks[i])
		}
		switch {
		case t == "-j" || t == "--jump" || t == "-g" || t == "--goto":
			if len(vals) > 0 {
				r.Target = vals[0]
			}
			r.Goto = t == "-g" || t == "--goto"
			inTarget = true
		case inTarget:
			r.TOpts[t] = vals
		case t == "-m" || t == "--match":
			// the module; its options are judged one by one
		default:
			r.Conds = append(r.Conds, cond{Opt: t, Vals: vals, Neg: neg})
		}
		neg = false
	}
	return r
}

// tri is a match decision on a packet the checks know only in part.
type tri int

const (
	no tri = iota
	maybe
	yes
)

func (t tri) not() tri { return 2 - t }

func and(a, b tri) tri { return min(a, b) }

// packet is what the checks know about a packet: unknown fields match "maybe".
type packet struct {
	Proto string // "udp", "tcp"; "" unknown
	DPort uint16 // 0 unknown
	Mark  uint32 // known: every packet has one
	// Srcs are the addresses the source may be (empty: unknown).
	Srcs []netip.Addr
}

func (p packet) match(r rule) tri {
	m := yes
	for _, c := range r.Conds {
		v := p.cond(c)
		if c.Neg {
			v = v.not()
		}
		m = and(m, v)
		if m == no {
			return no
		}
	}
	return m
}

func first(vals []string) string {
	if len(vals) == 0 {
		return ""
	}
	return vals[0]
}

func (p packet) cond(c cond) tri {
	v := first(c.Vals)
	switch c.Opt {
	case "--comment":
		return yes
	case "-p", "--protocol":
		if v == "all" || v == "0" {
			return yes
		}
		if p.Proto == "" {
			return maybe
		}
		if v == p.Proto || (v == "17" && p.Proto == "udp") || (v == "6" && p.Proto == "tcp") {
			return yes
		}
		return no
	case "--dport", "--destination-port", "--dports", "--destination-ports":
		if p.DPort == 0 {
			return maybe
		}
		for _, part := range strings.Split(v, ",") {
			if portIn(part, p.DPort) {
				return yes
			}
		}
		return no
	case "--mark":
		val, mask, ok := parseMark(v)
		if !ok {
			return maybe
		}
		if p.Mark&mask == val {
			return yes
		}
		return no
	case "-s", "--source":
		return p.srcIn(v)
	}
	return maybe
}

func (p packet) srcIn(v string) tri {
	if len(p.Srcs) == 0 {
		return maybe
	}
	pfx, err := netip.ParsePrefix(v)
	if err != nil {
		a, err := netip.ParseAddr(v)
		if err != nil {
			return maybe
		}
		pfx = netip.PrefixFrom(a, a.BitLen())
	}
	in := 0
	for _, a := range p.Srcs {
		if pfx.Contains(a) {
			in++
		}
	}
	switch in {
	case 0:
		return no
	case len(p.Srcs):
		return yes
	}
	return maybe
}

// portIn reads "N" or "A:B".
func portIn(s string, port uint16) bool {
	lo, hi, isRange := strings.Cut(s, ":")
	a, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return false
	}
	b := a
	if isRange {
		if b, err = strconv.ParseUint(hi, 10, 16); err != nil {
			return false
		}
	}
	return uint64(port) >= a && uint64(port) <= b
}

// parseMark reads "V/M" or "V" (hex or decimal), as iptables-save prints marks.
func parseMark(s string) (val, mask uint32, ok bool) {
	vs, ms, hasMask := strings.Cut(s, "/")
	v, err := strconv.ParseUint(vs, 0, 32)
	if err != nil {
		return 0, 0, false
	}
	m := uint64(0xffffffff)
	if hasMask {
		if m, err = strconv.ParseUint(ms, 0, 32); err != nil {
			return 0, 0, false
		}
	}
	return uint32(v), uint32(m), true
}

// applyMark returns the mark after a MARK target (iptables' semantics of each option).
func applyMark(mark uint32, r rule) uint32 {
	for opt, vals := range r.TOpts {
		val, mask, ok := parseMark(first(vals))
		if !ok {
			continue
		}
		switch opt {
		case "--set-xmark":
			mark = (mark &^ mask) ^ val
		case "--set-mark":
			mark = (mark &^ mask) | val
		case "--or-mark":
			mark |= val
		case "--xor-mark":
			mark ^= val
		case "--and-mark":
			mark &= val
		}
	}
	return mark
}

// setsBits reports whether a MARK rule sets every bit of bits whatever the mark was (an
// --xor-mark toggles, it does not set).
func setsBits(r rule, bits uint32) bool {
	return r.Target == "MARK" && applyMark(0, r)&bits == bits && applyMark(^uint32(0), r)&bits == bits
}

// hit is a rule a packet may reach and match.
type hit struct {
	Rule  rule
	Match tri
}

// terminal targets end the packet's traversal of the table when they match.
func terminal(target string) bool {
	switch target {
	case "ACCEPT", "DROP", "REJECT", "MASQUERADE", "SNAT", "DNAT", "REDIRECT":
		return true
	}
	return false
}

// walk follows p through chain of t, as the kernel does, as far as the checks can tell: a rule
// that surely matches applies (a MARK changes p.Mark, a terminal target ends the walk), a rule
// that may match is recorded and the walk goes on past it (both outcomes stay possible). It
// returns every target rule reached that may or surely match, in order, and p as it leaves.
func walk(t chains, chain string, p packet) ([]hit, packet) {
	var hits []hit
	p, _ = walkChain(t, chain, p, yes, &hits, 0)
	return hits, p
}

// walkChain returns done=true when a terminal rule surely matched. reached says whether the
// packet surely reaches chain (a jump that may match leads to maybe): a rule's hit is no surer.
func walkChain(t chains, chain string, p packet, reached tri, hits *[]hit, depth int) (packet, bool) {
	if depth > 32 { // iptables refuses loops; this bounds a malformed dump
		return p, false
	}
	for _, r := range t[chain] {
		m := and(reached, p.match(r))
		if m == no || r.Target == "" {
			continue
		}
		if _, user := t[r.Target]; user {
			sub, done := walkChain(t, r.Target, p, m, hits, depth+1)
			if m == yes {
				p = sub
				if done || r.Goto {
					return p, done
				}
			}
			continue
		}
		*hits = append(*hits, hit{Rule: r, Match: m})
		switch {
		case m != yes:
		case r.Target == "RETURN":
			return p, false
		case r.Target == "MARK":
			p.Mark = applyMark(p.Mark, r)
		case terminal(r.Target):
			return p, true
		}
	}
	return p, false
}
