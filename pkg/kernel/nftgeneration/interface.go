// Package nftgeneration reads the nf_tables ruleset generation of a network namespace: a counter the
// kernel advances on every committed change to any nf_tables table (iptables-nft's included),
// and never otherwise. Reading it is one netlink round trip, where reading the rules is a
// process launch per table; a proxier that saw its rules intact at generation g knows they are
// still intact while the generation is g.
package nftgeneration

// Reader reads the ruleset generation. Implementations: Netlink and Fake.
type Reader interface {
	// Generation returns the current generation. It fails where nf_tables is not available.
	Generation() (uint32, error)
}
