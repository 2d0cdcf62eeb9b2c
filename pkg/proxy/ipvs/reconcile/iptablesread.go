package reconcile

import (
	"bytes"
	"fmt"
	"strings"

	"k8s.io/klog/v2"
	utiliptables "k8s.io/kubernetes/pkg/util/iptables"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/nftgeneration"
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/desired"
)

// A verification used to launch iptables-save twice per family every syncPeriod, the largest
// part of an idle proxier's CPU after the IPVS reads. When iptables runs on nf_tables, the
// kernel's ruleset generation says whether anything changed since the last read: one netlink
// round trip instead of two process launches. The generation moves on any committed change to
// any table (another agent's, the other family's, ours), so an unchanged one proves the text is
// unchanged; a changed one only means read again.

// readIPTables reads the nat and filter tables. It reports which jump rules are missing,
// and whether each of our chains has as many rules as the text we last restored (restored;
// nil when unknown). Comparing rule counts, not text, avoids depending on how iptables-save
// respells a rule, and still catches a flushed or deleted chain or a deleted rule.
func (r *Reconciler) readIPTables(restored []byte) (intact bool, missing []desired.JumpRule, err error) {
	read, err := r.savedIPTables()
	if err != nil {
		return false, nil, err
	}
	if restored == nil {
		return false, read.missing, nil
	}
	for key, n := range ruleCounts(restored) {
		if read.counts[key] != n {
			return false, read.missing, nil
		}
	}
	return true, read.missing, nil
}

// ruleCounts counts "-A CHAIN" lines of our chains per table/chain in iptables-save or
// iptables-restore text.
func ruleCounts(text []byte) map[string]int {
	ours := map[string]bool{}
	for _, c := range desired.KubeChains() {
		ours[c.Chain] = true
	}
	counts := map[string]int{}
	table := ""
	for _, line := range strings.Split(string(text), "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
		case strings.HasPrefix(line, ":"):
			if f := strings.Fields(line[1:]); len(f) > 0 && ours[f[0]] {
				counts[table+"/"+f[0]] += 0
			}
		case strings.HasPrefix(line, "-A "):
			if f := strings.Fields(line); len(f) > 1 && ours[f[1]] {
				counts[table+"/"+f[1]]++
			}
		}
	}
	return counts
}

// iptablesRead is what one iptables-save of the nat and filter tables said.
type iptablesRead struct {
	counts  map[string]int // rules per table/chain of ours (ruleCounts)
	missing []desired.JumpRule
	// nft: the text came from the nf_tables backend. gen was read before the text: a change
	// committed after that moved the generation past gen, so finding gen again later means
	// the text is still what the kernel holds (a 32-bit counter: coming back to the same value
	// would take four billion commits between two verifications).
	nft    bool
	gen    uint32
	genSet bool
}

// savedIPTables returns the last read when the generation says the rules have not changed
// since, and reads them otherwise.
func (r *Reconciler) savedIPTables() (*iptablesRead, error) {
	gen, genOK := r.rulesetGeneration()
	if last := r.lastIPTables; last != nil && genOK && last.genSet && last.gen == gen {
		return last, nil
	}
	read, err := r.readIPTablesText()
	if err != nil {
		r.lastIPTables = nil
		return nil, err
	}
	read.gen, read.genSet = gen, genOK
	r.lastIPTables = read
	return read, nil
}

// rulesetGeneration reads the generation once the rules are known to live in nf_tables (asking
// first could load nf_tables on a node whose iptables is legacy).
func (r *Reconciler) rulesetGeneration() (uint32, bool) {
	if r.rulesGen == nil || r.lastIPTables == nil || !r.lastIPTables.nft {
		return 0, false
	}
	gen, err := r.rulesGen.Generation()
	if err != nil {
		klog.V(2).InfoS("Reading the nf_tables ruleset generation failed; reading the rules", "ipFamily", r.family, "err", err)
		return 0, false
	}
	return gen, true
}

// readIPTablesText runs iptables-save for the nat and filter tables.
func (r *Reconciler) readIPTablesText() (*iptablesRead, error) {
	read := &iptablesRead{counts: map[string]int{}, nft: true}
	var saved bytes.Buffer
	for _, table := range []utiliptables.Table{utiliptables.TableNAT, utiliptables.TableFilter} {
		saved.Reset()
		if err := r.iptables.SaveInto(table, &saved); err != nil {
			return nil, fmt.Errorf("reading iptables %s table: %w", table, err)
		}
		for tableChain, n := range ruleCounts(saved.Bytes()) {
			read.counts[tableChain] += n
		}
		read.missing = append(read.missing, desired.MissingJumps(saved.Bytes(), string(table))...)
		read.nft = read.nft && nftgeneration.IsNFTSave(saved.Bytes())
	}
	return read, nil
}
