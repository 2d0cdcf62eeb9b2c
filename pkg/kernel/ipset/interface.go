// Package ipset is the kernel adapter for ipsets. Reads go over netlink (the tool's `ipset save`
// and `ipset list -t` are the fallback); writes go in one `ipset restore` per batch, never one
// process per entry.
package ipset

import "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/objects"

// Set describes an ipset as the proxier creates it (pkg/kernel/objects, which the desired
// state imports without linking this adapter).
type Set = objects.IPSet

// Content is a set and its entries as the kernel holds them, entries in `ipset save` spelling.
type Content struct {
	Set
	Entries []string
}

// Op is one line of an `ipset restore` batch.
type Op struct {
	Kind  OpKind
	Set   Set    // for Create; only Name for the others
	Entry string // for Add and Del
}

type OpKind int

const (
	Create OpKind = iota // create with -exist semantics (no error if it exists with the same type)
	Add
	Del
	Flush
	Destroy
)

// Interface is what the proxier needs from ipset. Implementations: Kernel (netlink reads, the ipset tool for writes) and Fake.
type Interface interface {
	// List returns the named sets with their entries, in the order named, or every set in the
	// network namespace when no name is given. A named set that does not exist is left out.
	List(names ...string) ([]Content, error)
	// EntryCounts returns every set's number of entries, without reading the entries.
	EntryCounts() (map[string]int, error)
	// Apply runs the batch as one `ipset restore`; adding an existing entry or deleting a missing
	// one is not an error.
	Apply(ops []Op) error
}
