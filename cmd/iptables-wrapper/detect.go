package main

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
)

// Mode is an iptables backend: the legacy (x_tables) or the nf_tables one.
type Mode string

const (
	Legacy Mode = "legacy"
	NFT    Mode = "nft"
)

// A Saver runs one backend's iptables-save (or ip6tables-save with ipv6) and returns its
// standard output. mangle asks for the mangle table alone (-t mangle); the detection never asks
// the legacy backend for it, since naming a table makes the legacy kernel module create it.
// Errors are the caller's to swallow: a backend that cannot be read counts as empty.
type Saver func(mode Mode, ipv6, mangle bool) []byte

// Detect chooses the backend that this node's Kubernetes components already use, with the
// semantics of kubernetes-sigs/iptables-wrappers (the v2 shell wrapper, which the Go rewrite
// keeps save for the last step):
//
//  1. kubelet (1.17 and later) creates KUBE-IPTABLES-HINT or KUBE-KUBELET-CANARY in the mangle
//     table of the backend it uses: if the nft backend has either (IPv4 or IPv6), nft;
//  2. else if the legacy backend has either (read from a full save), legacy;
//  3. else the backend with more rule lines ("-A ..." lines of every table, IPv4 and IPv6
//     summed) wins, legacy only when it has strictly more: a node with no rules at all, or as
//     many in each, gets nft.
//
// The saves run lazily in that order, so a node where kubelet wrote its hint to nft costs one
// or two small saves.
func Detect(save Saver) (Mode, string) {
	for _, v6 := range []bool{false, true} {
		if chain := kubeletChain(save(NFT, v6, true)); chain != "" {
			return NFT, "nft backend has kubelet's " + chain + " chain"
		}
	}
	var legacyFull [2][]byte
	for i, v6 := range []bool{false, true} {
		legacyFull[i] = save(Legacy, v6, false)
		if chain := kubeletChain(legacyFull[i]); chain != "" {
			return Legacy, "legacy backend has kubelet's " + chain + " chain"
		}
	}
	legacyRules := ruleLines(legacyFull[0]) + ruleLines(legacyFull[1])
	nftRules := ruleLines(save(NFT, false, false)) + ruleLines(save(NFT, true, false))
	if legacyRules > nftRules {
		return Legacy, "no kubelet chain; legacy has more rules (" + strconv.Itoa(legacyRules) + " > " + strconv.Itoa(nftRules) + ")"
	}
	return NFT, "no kubelet chain; legacy has no more rules than nft (" + strconv.Itoa(legacyRules) + " <= " + strconv.Itoa(nftRules) + ")"
}

// kubeletChain returns the name of the first kubelet hint chain declared in save's output
// (a ":CHAIN POLICY [p:b]" line), or "".
func kubeletChain(out []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		for _, c := range []string{"KUBE-IPTABLES-HINT", "KUBE-KUBELET-CANARY"} {
			if strings.HasPrefix(line, ":"+c) {
				return c
			}
		}
	}
	return ""
}

// ruleLines counts the rule lines of save's output: those starting with '-'.
func ruleLines(out []byte) int {
	n := 0
	for len(out) > 0 {
		if out[0] == '-' {
			n++
		}
		i := bytes.IndexByte(out, '\n')
		if i < 0 {
			break
		}
		out = out[i+1:]
	}
	return n
}
