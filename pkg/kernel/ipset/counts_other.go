//go:build !linux

package ipset

// netlinkEntryCounts is Linux's; elsewhere EntryCounts runs `ipset list -t`.
var netlinkEntryCounts func() (map[string]int, error)
