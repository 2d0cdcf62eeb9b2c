//go:build linux

package ipset

import (
	"strings"
	"testing"
)

// FuzzSetListing feeds a set's dump, a header message and a continuation, to the netlink
// reader. What it accepts must be what ParseSave would read from `ipset save`: the set asked
// for, a type with its family or range, and entries in Canonical's spelling for that set (an
// entry Canonical would refuse or respell is garbage, not an entry).
func FuzzSetListing(f *testing.F) {
	f.Fuzz(func(t *testing.T, name string, first, next []byte) {
		l := setListing{name: name}
		for _, msg := range [][]byte{first, next} {
			if err := l.add(msg); err != nil {
				return
			}
			if l.Name != name {
				t.Fatalf("listed set %q, asked for %q", l.Name, name)
			}
			for _, e := range l.Entries {
				c, err := Canonical(l.Set, e)
				if err != nil || c != e {
					t.Fatalf("entry %q of %+v: Canonical gives %q, %v", e, l.Set, c, err)
				}
			}
		}
	})
}

// FuzzParseSetHeader: a header read has a set name (without NUL) and a count.
func FuzzParseSetHeader(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		name, n, err := parseSetHeader(body)
		if err != nil {
			return
		}
		if name == "" || strings.ContainsRune(name, 0) || n < 0 {
			t.Fatalf("header of %q with %d entries", name, n)
		}
	})
}
