package diagnose

import (
	"fmt"
	"net/netip"
	"sort"
)

// Helpers shared by the two VXLAN checks: which links tunnel, what their outer packets look
// like to netfilter, and which MASQUERADE rules with --random-fully they can reach.

const defaultMasqMark = 0x4000 // --iptables-masquerade-bit 14, upstream's default

func vxlanLinks(s *Snapshot) []Link {
	var out []Link
	for _, l := range s.Links {
		if l.Kind == "vxlan" {
			out = append(out, l)
		}
	}
	return out
}

// families are the iptables families read, in a stable order.
func families(s *Snapshot) []string {
	var out []string
	for f := range s.IPTables {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

func familyOf(fam string, a netip.Addr) bool { return (fam == "IPv6") == (a.Is6() && !a.Is4In6()) }

// underlaySrcs are the addresses an outer tunnel packet of family fam may leave with: the
// node's addresses on links that are not themselves the pod network or kube-ipvs0. A flannel
// rule such as "-s 10.244.0.0/16 -j MASQUERADE --random-fully" thus does not count as
// matching tunnel packets.
func underlaySrcs(s *Snapshot, fam string) []netip.Addr {
	var out []netip.Addr
	for _, l := range s.Links {
		switch l.Kind {
		case "dummy", "vxlan", "bridge", "geneve", "ipip", "wireguard", "tun":
			continue
		}
		if l.Name == "lo" {
			continue
		}
		for _, a := range l.Addrs {
			if familyOf(fam, a) && !a.IsLinkLocalUnicast() && !a.IsLoopback() {
				out = append(out, a)
			}
		}
	}
	return out
}

// masqMark is the bit KUBE-MARK-MASQ sets, and whether kube-proxy's chain is there at all.
func masqMark(nat chains) (uint32, bool) {
	rules, ok := nat["KUBE-MARK-MASQ"]
	if !ok {
		return defaultMasqMark, false
	}
	for _, r := range rules {
		if r.Target == "MARK" {
			if m := applyMark(0, r); m != 0 {
				return m, true
			}
		}
	}
	return defaultMasqMark, true
}

// randomFully are the hits whose target rewrites the source port at random.
func randomFully(hits []hit) []hit {
	var out []hit
	for _, h := range hits {
		if _, rf := h.Rule.TOpts["--random-fully"]; rf && (h.Rule.Target == "MASQUERADE" || h.Rule.Target == "SNAT") {
			out = append(out, h)
		}
	}
	return out
}

func hitLines(fam, table string, hits []hit) []string {
	var out []string
	for _, h := range hits {
		how := "matches"
		if h.Match == maybe {
			how = "may match"
		}
		out = append(out, fmt.Sprintf("%s %s (%s): %s", fam, table, how, h.Rule.Line))
	}
	return out
}

// explicitPort reports whether r names port as a destination port: a rule written for tunnel
// traffic, counted even when its other matches cannot be decided.
func explicitPort(r rule, port uint16) bool {
	p := packet{Proto: "udp", DPort: port}
	for _, c := range r.Conds {
		switch c.Opt {
		case "--dport", "--destination-port", "--dports", "--destination-ports":
			if !c.Neg && p.cond(c) == yes {
				return true
			}
		}
	}
	return false
}

// outerMark follows a tunnel packet of the link through the chains it crosses before nat
// POSTROUTING and returns the mark it carries there, with the lines that put the masquerade
// bit on it: kube-proxy's own mark surviving from the inner packet (a KUBE-POSTROUTING that
// does not clear it, as before kube-proxy 1.19), or another agent's rule marking it.
func outerMark(fam string, tables map[string]string, nat chains, bit uint32, p packet) (packet, []string) {
	var why []string
	if _, kube := nat["KUBE-MARK-MASQ"]; kube {
		if _, after := walk(nat, "POSTROUTING", packet{Mark: bit}); after.Mark&bit != 0 {
			p.Mark |= bit
			why = append(why, fmt.Sprintf("%s nat: nat POSTROUTING does not clear the masquerade mark %#x of service traffic (no -j MARK --xor-mark %#x in KUBE-POSTROUTING), so the tunnel packet inherits it", fam, bit, bit))
		}
	}
	mangle := parseSave(tables["mangle"])
	for _, step := range []struct {
		table string
		t     chains
		chain string
	}{{"mangle", mangle, "OUTPUT"}, {"nat", nat, "OUTPUT"}, {"mangle", mangle, "POSTROUTING"}} {
		hits, after := walk(step.t, step.chain, p)
		for _, h := range hits {
			if !setsBits(h.Rule, bit) {
				continue
			}
			if h.Match == yes || explicitPort(h.Rule, p.DPort) {
				after.Mark |= bit
				why = append(why, fmt.Sprintf("%s %s: marks the tunnel packet with %#x: %s", fam, step.table, bit, h.Rule.Line))
			}
		}
		p = after
	}
	return p, why
}

// tunnelFamily is what both VXLAN checks start from, per iptables family the link's tunnel
// packets can leave in: the family's nat table, its masquerade bit and the outer packet.
type tunnelFamily struct {
	fam   string
	nat   chains
	bit   uint32
	outer packet // UDP to the link's port from an underlay address, mark 0
}

// tunnelFamilies skips a family in which the node has no underlay address: no tunnel packet of
// it can leave the node, so its rules are no evidence.
func tunnelFamilies(s *Snapshot, l Link) []tunnelFamily {
	var out []tunnelFamily
	for _, fam := range families(s) {
		srcs := underlaySrcs(s, fam)
		if len(srcs) == 0 {
			continue
		}
		nat := parseSave(s.IPTables[fam]["nat"])
		bit, _ := masqMark(nat)
		out = append(out, tunnelFamily{fam: fam, nat: nat, bit: bit, outer: packet{Proto: "udp", DPort: l.VXLANPort, Srcs: srcs}})
	}
	return out
}
