//go:build !linux

package ipset

// The netlink reads are Linux's; elsewhere EntryCounts runs `ipset list -t` and List `ipset save`.
var (
	netlinkEntryCounts func() (map[string]int, error)
	netlinkList        func(names []string) ([]Content, error)
)
