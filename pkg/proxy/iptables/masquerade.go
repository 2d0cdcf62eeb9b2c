// Package iptables makes upstream kube-proxy's iptables proxier follow
// --masquerade-random-fully: a decorator of the iptables interface rewrites the
// KUBE-POSTROUTING rules in the iptables-restore input the proxier writes. It also holds the
// text of the VXLAN masquerade rule, which the IPVS proxier writes as well, so that both modes
// program the same rule. See docs/masquerade-random-fully.md.
package iptables

import (
	"bytes"
	"slices"
	"strconv"
	"strings"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/forkconfig"
)

// PostroutingChain is the nat chain upstream's proxiers masquerade in.
const PostroutingChain = "KUBE-POSTROUTING"

// VXLANMasqueradeComment marks the rules auto adds. It must not contain "--random-fully":
// tools (and the never rewrite) look for that flag.
const VXLANMasqueradeComment = "kube-proxy-ipvs VXLAN traffic requiring SNAT without random-fully"

// VXLANMasqueradeRule is the rule, after "-A KUBE-POSTROUTING", that auto puts before the
// "MASQUERADE --random-fully" rule for one VXLAN port. It sees only packets that carry the
// masquerade mark (the chain returns early for the rest, and has cleared the mark), and it
// matches the UDP destination port only: that is what identifies the outer packet of a VXLAN
// tunnel, whatever its underlay device or source address. It is written in iptables-save's
// canonical order (protocol, its match, comment, target) so that a dump reads the same.
func VXLANMasqueradeRule(port uint16) []string {
	return []string{"-p", "udp", "-m", "udp", "--dport", strconv.Itoa(int(port)),
		"-m", "comment", "--comment", `"` + VXLANMasqueradeComment + `"`, "-j", "MASQUERADE"}
}

// SortedPorts returns the ports sorted, without repeats and without 0.
func SortedPorts(ports []uint16) []uint16 {
	out := slices.DeleteFunc(slices.Clone(ports), func(p uint16) bool { return p == 0 })
	slices.Sort(out)
	return slices.Compact(out)
}

// isRandomFullyMasquerade reports whether the fields of a rule line are a MASQUERADE with
// --random-fully (upstream's "kubernetes service traffic requiring SNAT" rule).
func isRandomFullyMasquerade(fields []string) bool {
	return slices.Contains(fields, "--random-fully") && hasTarget(fields, "MASQUERADE")
}

func hasTarget(fields []string, target string) bool {
	for i := 0; i+1 < len(fields); i++ {
		if (fields[i] == "-j" || fields[i] == "--jump") && fields[i+1] == target {
			return true
		}
	}
	return false
}

// rewrite is the result of rewriting one iptables-restore input.
type rewrite struct {
	out []byte
	// origLine maps a line of out (1-based) to the line of the input it came from; an
	// inserted line maps to the rule it was inserted before.
	origLine []int
	changed  bool
	// postrouting are the KUBE-POSTROUTING rules of the input as upstream wrote them (before
	// the rewrite): the whole chain when flushed is set.
	postrouting []string
	// flushed says whether the input declared (flushed) KUBE-POSTROUTING in the nat table;
	// deleted whether it deleted it (-X, as cleanup does).
	flushed, deleted bool
}

// Rewrite rewrites an iptables-restore input for mode: always leaves it as is; never drops
// --random-fully from the MASQUERADE rules of KUBE-POSTROUTING; auto inserts one
// VXLANMasqueradeRule per port before each MASQUERADE --random-fully rule of KUBE-POSTROUTING.
// Only the nat table is touched; table is the table the input starts in (Restore's argument),
// "" when the input names its tables (RestoreAll). Input without KUBE-POSTROUTING rules, such
// as a partial restore, passes unchanged.
func Rewrite(data []byte, table string, mode forkconfig.RandomFully, ports []uint16) []byte {
	return rewriteInput(data, table, mode, ports).out
}

func rewriteInput(data []byte, table string, mode forkconfig.RandomFully, ports []uint16) rewrite {
	r := rewrite{out: data}
	if !bytes.Contains(data, []byte(PostroutingChain)) {
		return r
	}
	ports = SortedPorts(ports)
	var out bytes.Buffer
	out.Grow(len(data) + len(ports)*128)
	lines := strings.SplitAfter(string(data), "\n")
	for i, line := range lines {
		if line == "" {
			continue
		}
		text := strings.TrimRight(line, "\r\n")
		emit := func(s string) {
			out.WriteString(s)
			r.origLine = append(r.origLine, i+1)
		}
		switch {
		case strings.HasPrefix(text, "*"):
			table = strings.TrimSpace(text[1:])
		case table != "nat":
		case strings.HasPrefix(text, ":"+PostroutingChain+" "):
			r.flushed = true
		case text == "-X "+PostroutingChain || text == "--delete-chain "+PostroutingChain:
			r.deleted = true
		case strings.HasPrefix(text, "-A "+PostroutingChain+" "):
			r.postrouting = append(r.postrouting, text)
			fields := strings.Fields(text)
			if !isRandomFullyMasquerade(fields) {
				break
			}
			switch mode {
			case forkconfig.RandomFullyNever:
				emit(dropRandomFully(text) + line[len(text):])
				r.changed = true
				continue
			case forkconfig.RandomFullyAuto:
				for _, p := range ports {
					emit("-A " + PostroutingChain + " " + strings.Join(VXLANMasqueradeRule(p), " ") + "\n")
					r.changed = true
				}
			}
		}
		emit(line)
	}
	if r.changed {
		r.out = out.Bytes()
	}
	return r
}

// dropRandomFully removes the --random-fully argument from a rule, leaving the rest of its
// text (a quoted comment's spacing included) as it was.
func dropRandomFully(rule string) string {
	if s, ok := strings.CutSuffix(rule, " --random-fully"); ok {
		return s
	}
	return strings.Replace(rule, " --random-fully ", " ", 1)
}
