package diagnose

import "fmt"

// Check 1: a VXLAN link with tx checksum offload on, on a kernel with the UDP checksum bug,
// whose tunnel packets can reach a MASQUERADE --random-fully rule: "the 63 second delay".
var vxlanChecksumCheck = check{
	ID:    IDVXLANChecksum,
	Title: "VXLAN tx checksum offload with --random-fully masquerade of tunnel packets",
	Needs: []Source{SourceLinks, SourceIPTables, SourceKernelRelease},
	Run:   runVXLANChecksum,
}

func runVXLANChecksum(s *Snapshot) []Finding {
	var out []Finding
	for _, l := range vxlanLinks(s) {
		if l.TxChecksum == nil || !*l.TxChecksum {
			continue
		}
		var evidence []string
		triggered := false
		for _, tf := range tunnelFamilies(s, l) {
			fam, nat, bit, base := tf.fam, tf.nat, tf.bit, tf.outer
			// What reaches --random-fully if the packet is marked (by anyone) and if it is not.
			seen := map[string]bool{}
			for _, mark := range []uint32{bit, 0} {
				p := base
				p.Mark = mark
				hits, _ := walk(nat, "POSTROUTING", p)
				for _, line := range hitLines(fam, "nat", randomFully(hits)) {
					if !seen[line] {
						seen[line] = true
						evidence = append(evidence, fmt.Sprintf("%s [tunnel packet to UDP %d with mark %#x]", line, l.VXLANPort, mark))
					}
				}
			}
			if outer, why := outerMark(fam, s.IPTables[fam], nat, bit, base); outer.Mark&bit != 0 && len(why) > 0 {
				triggered = true
			}
		}
		if len(evidence) == 0 {
			continue
		}
		affected, _, kernelWhy := udpCsumBug(s.KernelRelease)
		sev := Info
		if affected {
			sev = Warning
			if triggered {
				sev = Error
			}
		}
		head := []string{
			fmt.Sprintf("link %s: vxlan, dstport %d, tx-checksumming on", l.Name, l.VXLANPort),
			kernelWhy,
		}
		if triggered {
			head = append(head, "tunnel packets are marked for masquerade on this node (see tunnel-double-masquerade)")
		}
		out = append(out, Finding{
			ID:       IDVXLANChecksum,
			Severity: sev,
			Title:    fmt.Sprintf("%s: tunnel packets can be masqueraded with --random-fully while tx checksum offload is on", l.Name),
			Evidence: append(head, evidence...),
			Why: "When a VXLAN packet's outer UDP source port is rewritten by MASQUERADE --random-fully, kernels " +
				"without the netfilter fix (mainline 5.7; stable 5.6.13, 5.4.41, 4.19.123, 4.14.181; many distribution " +
				"kernels) leave a bad UDP checksum on packets whose checksum the device offloads, and the receiving node " +
				"drops them. TCP retries the SYN after 1, 2, 4, 8, 16 and 32 seconds: connections to Services take 63 " +
				"seconds or fail. On a fixed kernel the rules are harmless but the same rewrite still breaks tunnels " +
				"through NAT devices that expect the port.",
			Fix: "Run kube-proxy-ipvs with --masquerade-random-fully=auto (its default; iptables.masqueradeRandomFully " +
				"in the config file), which masquerades UDP to the VXLAN ports without --random-fully, or =never. " +
				"Otherwise turn the offload off (ethtool -K " + l.Name + " tx-checksum-ip-generic off, persisted by a " +
				"udev rule) or upgrade the kernel, and remove whatever marks tunnel packets for masquerade.",
		})
	}
	return out
}
