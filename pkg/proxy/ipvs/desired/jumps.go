package desired

import (
	"bytes"
	"strconv"
	"strings"
)

// Upstream links each built-in chain to ours with EnsureRule: two process launches per jump
// rule ("iptables -C", then "iptables -I"), eighteen per family on a fresh node, which under
// emulation cost more than loading every IPVS object of a small cluster. The Reconciler instead
// learns which jumps are missing from the iptables-save it reads anyway, and inserts those in
// the same iptables-restore that writes our chains: "-I" in a built-in chain that the input
// does not declare leaves that chain's other rules alone (--noflush), and inserting in
// upstream's order leaves the rules in upstream's order.

// RestoreLine is the jump as an iptables-restore line: inserted at the head of SourceChain, as
// EnsureRule(Prepend) does.
func (j JumpRule) RestoreLine() string {
	var b strings.Builder
	b.WriteString("-I ")
	b.WriteString(j.SourceChain)
	for _, a := range j.Args() {
		b.WriteByte(' ')
		if a == "" || strings.ContainsAny(a, " \t\"'") {
			a = strconv.Quote(a)
		}
		b.WriteString(a)
	}
	return b.String()
}

// MissingJumps returns the jump rules that the iptables-save text of table lacks. A jump is there when a rule in its source chain carries its comment and jumps to its
// chain; matching on those, not the whole text, does not depend on how iptables-save orders
// or spells the match arguments.
func MissingJumps(saved []byte, table string) []JumpRule {
	var missing []JumpRule
	lines := strings.Split(string(saved), "\n")
	for _, j := range JumpRules() {
		if j.Table != table {
			continue
		}
		found := false
		for _, line := range lines {
			if strings.HasPrefix(line, "-A "+j.SourceChain+" ") && strings.HasSuffix(line, "-j "+j.Chain) &&
				strings.Contains(line, j.Comment) {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, j)
		}
	}
	return missing
}

// WithJumps returns the restore text with the jumps inserted at the end of their table's
// block, before its COMMIT (after the chains they jump to are declared); a table the text has
// no block for gets one.
func WithJumps(text []byte, jumps []JumpRule) []byte {
	if len(jumps) == 0 {
		return text
	}
	byTable := map[string][]string{}
	var order []string
	for _, j := range jumps {
		if _, ok := byTable[j.Table]; !ok {
			order = append(order, j.Table)
		}
		byTable[j.Table] = append(byTable[j.Table], j.RestoreLine())
	}
	var out bytes.Buffer
	out.Grow(len(text) + 128*len(jumps))
	table := ""
	for _, line := range strings.SplitAfter(string(text), "\n") {
		trimmed := strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(trimmed, "*"):
			table = trimmed[1:]
		case trimmed == "COMMIT" && byTable[table] != nil:
			for _, l := range byTable[table] {
				out.WriteString(l + "\n")
			}
			delete(byTable, table)
		}
		out.WriteString(line)
	}
	if out.Len() > 0 && !bytes.HasSuffix(out.Bytes(), []byte("\n")) {
		out.WriteByte('\n')
	}
	for _, t := range order {
		if byTable[t] == nil {
			continue
		}
		out.WriteString("*" + t + "\n")
		for _, l := range byTable[t] {
			out.WriteString(l + "\n")
		}
		out.WriteString("COMMIT\n")
	}
	return out.Bytes()
}
