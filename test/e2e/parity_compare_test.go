package e2e

// The differential test's normalization and comparison (docs/parity.md). A dump is a sorted list
// of lines, each starting with its section: "ipvs", "ipvs-config", "ipset", "iptables"/
// "ip6tables" (table, chain), "link"/"addr" (kube-ipvs0), "sysctl". Two dumps are compared line
// by line; the only differences allowed are those of parityAllowed, written down once here.

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/framework"
)

// parityAllowedDiff is a difference the fork makes by design. A line only upstream has is
// "-" + line, only ours "+" + line; it is allowed when re matches it.
type parityAllowedDiff struct {
	re     *regexp.Regexp
	reason string
	doc    string
}

// parityAllowed: the ONLY differences between upstream and ours the test accepts. Every entry
// says why and where that is documented. The generator stays away from inputs on which the fork
// refuses what upstream serves (docs/address-guard.md, docs/security.md), and the parity node has
// no VXLAN link (docs/masquerade-random-fully.md), so those need no entry.
var parityAllowed = []parityAllowedDiff{}

// parityDump normalizes a raw read-back into sorted lines.
func parityDump(r *framework.ParityRaw) []string {
	var out []string
	for _, l := range r.IPVS {
		out = append(out, "ipvs "+l)
	}
	out = append(out, "ipvs-config "+r.IPVSConf)
	out = append(out, normalizeIPSet(r.IPSet)...)
	out = append(out, normalizeKubeChains("iptables", r.IPTables)...)
	out = append(out, normalizeKubeChains("ip6tables", r.IP6Tables)...)
	out = append(out, r.Addrs...)
	for _, s := range r.Sysctls {
		out = append(out, "sysctl "+s)
	}
	sort.Strings(out)
	return out
}

// normalizeIPSet keeps the KUBE-* sets: "ipset NAME create TYPE OPTS" and "ipset NAME add ENTRY".
func normalizeIPSet(save string) []string {
	var out []string
	for _, l := range strings.Split(save, "\n") {
		f := strings.Fields(l)
		if len(f) < 3 || (f[0] != "create" && f[0] != "add") || !strings.HasPrefix(f[1], "KUBE-") {
			continue
		}
		rest := strings.Join(f[2:], " ")
		rest = parityInitval.ReplaceAllString(rest, "") // a random hash seed per set
		out = append(out, fmt.Sprintf("ipset %s %s %s", f[1], f[0], rest))
	}
	return out
}

var parityInitval = regexp.MustCompile(` initval 0x[0-9a-f]+`)

var parityCounters = regexp.MustCompile(`^\[\d+:\d+\]\s*`)

// parityUnorderedChains are chains whose rules are compared as a set: each rule matches one
// disjoint case and ends in the same verdict, so their order changes nothing, and upstream
// writes them in Go map order (a different order at every sync).
var parityUnorderedChains = map[string]string{
	"KUBE-IPVS-OUT-FILTER": "one DROP rule per LoadBalancer ingress IP, protocol and port (-s IP -m ipvs --vaddr IP --vport P)",
}

// normalizeKubeChains keeps, from an iptables-save output, the KUBE-* chains (declaration and
// rules) and the rules of other chains that jump to or mention a KUBE-* chain or set. Counters
// are dropped; chains are sorted by table and name; the rules of a chain keep their order (a
// 3-digit index): order matters to iptables; but for parityUnorderedChains ("---").
func normalizeKubeChains(family, save string) []string {
	var out []string
	table := ""
	idx := map[string]int{}
	for _, l := range strings.Split(save, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#") || l == "COMMIT":
		case strings.HasPrefix(l, "*"):
			table = l[1:]
		case strings.HasPrefix(l, ":"):
			f := strings.Fields(l[1:])
			if len(f) > 0 && strings.HasPrefix(f[0], "KUBE-") {
				out = append(out, fmt.Sprintf("%s %s %s chain", family, table, f[0]))
			}
		default:
			l = parityCounters.ReplaceAllString(l, "")
			f := strings.Fields(l)
			if len(f) < 2 || f[0] != "-A" {
				continue
			}
			chain := f[1]
			if !strings.HasPrefix(chain, "KUBE-") && !strings.Contains(l, "KUBE-") {
				continue
			}
			if _, ok := parityUnorderedChains[chain]; ok {
				out = append(out, fmt.Sprintf("%s %s %s --- %s", family, table, chain, l))
				continue
			}
			k := table + " " + chain
			idx[k]++
			out = append(out, fmt.Sprintf("%s %s %s %03d %s", family, table, chain, idx[k], l))
		}
	}
	return out
}

// parityDiff compares upstream's and ours' dumps: the lines only one side has, each "-" (only
// upstream) or "+" (only ours), split into allowed (with the entry) and unexpected ones.
func parityDiff(up, ours []string) (unexpected []string, allowed map[string][]string) {
	count := map[string]int{}
	for _, l := range up {
		count[l]--
	}
	for _, l := range ours {
		count[l]++
	}
	allowed = map[string][]string{}
	keys := make([]string, 0, len(count))
	for l := range count {
		keys = append(keys, l)
	}
	sort.Strings(keys)
	for _, l := range keys {
		n := count[l]
		sign := "+"
		if n < 0 {
			sign, n = "-", -n
		}
		for ; n > 0; n-- {
			d := sign + " " + l
			if a := parityAllowedFor(d); a != nil {
				allowed[a.reason] = append(allowed[a.reason], d)
				continue
			}
			unexpected = append(unexpected, d)
		}
	}
	return unexpected, allowed
}

func parityAllowedFor(d string) *parityAllowedDiff {
	for i := range parityAllowed {
		if parityAllowed[i].re.MatchString(d) {
			return &parityAllowed[i]
		}
	}
	return nil
}

// parityHas reports which of want (virtual server keys, "TCP 10.96.0.10:80") the dump lacks and
// which of gone it still holds.
func parityPresence(dump []string, want, gone []string) (missing, stale []string) {
	have := map[string]bool{}
	for _, l := range dump {
		if rest, ok := strings.CutPrefix(l, "ipvs vs "); ok {
			if i := strings.Index(rest, " sched="); i > 0 {
				have[rest[:i]] = true
			}
		}
	}
	for _, k := range want {
		if !have[k] {
			missing = append(missing, k)
		}
	}
	for _, k := range gone {
		if have[k] {
			stale = append(stale, k)
		}
	}
	return missing, stale
}
