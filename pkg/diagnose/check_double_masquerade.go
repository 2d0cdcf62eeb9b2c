package diagnose

import "fmt"

// Check 3: tunnel packets that carry the masquerade mark into nat POSTROUTING and meet a
// MASQUERADE --random-fully rule there: the outer UDP source port is rewritten.
var tunnelDoubleMasqueradeCheck = check{
	ID:    IDTunnelDoubleMasquerade,
	Title: "encapsulated traffic masqueraded a second time with a random source port",
	Needs: []Source{SourceLinks, SourceIPTables},
	Run:   runTunnelDoubleMasquerade,
}

func runTunnelDoubleMasquerade(s *Snapshot) []Finding {
	var out []Finding
	for _, l := range vxlanLinks(s) {
		for _, tf := range tunnelFamilies(s, l) {
			fam, nat, bit, p := tf.fam, tf.nat, tf.bit, tf.outer
			outer, why := outerMark(fam, s.IPTables[fam], nat, bit, p)
			if outer.Mark&bit == 0 || len(why) == 0 {
				continue
			}
			hits, _ := walk(nat, "POSTROUTING", outer)
			rf := randomFully(hits)
			if len(rf) == 0 {
				continue
			}
			evidence := append([]string{fmt.Sprintf("link %s: vxlan, dstport %d", l.Name, l.VXLANPort)}, why...)
			evidence = append(evidence, hitLines(fam, "nat", rf)...)
			out = append(out, Finding{
				ID:       IDTunnelDoubleMasquerade,
				Severity: Warning,
				Title:    fmt.Sprintf("%s (%s): tunnel packets to UDP %d are masqueraded with --random-fully", l.Name, fam, l.VXLANPort),
				Evidence: evidence,
				Why: "The masquerade mark survives encapsulation: the outer VXLAN packet is masqueraded like the inner " +
					"one it carries, and with --random-fully its UDP source port is replaced by a random one. That is " +
					"the precondition of the \"63 second delay\" (see vxlan-checksum-offload) on kernels with the checksum " +
					"bug, and it spreads one flow's tunnel traffic over random ports, which firewalls and NAT devices " +
					"on the underlay may not expect.",
				Fix: "Find and remove the rule that marks tunnel traffic (shown above), or the kube-proxy older than 1.19 " +
					"that does not clear its mark. kube-proxy-ipvs with --masquerade-random-fully=auto (the default) " +
					"masquerades UDP to the node's VXLAN ports without --random-fully, so even marked tunnel packets " +
					"keep their source port; =never drops --random-fully everywhere.",
			})
		}
	}
	return out
}
