package ipset

import (
	"bufio"
	"fmt"
	"strings"
)

// ParseSave parses the output of `ipset save`, e.g.
//
//	create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x5f7a9f1e
//	add KUBE-CLUSTER-IP 10.96.0.1,tcp:443
//	create KUBE-NODE-PORT-TCP bitmap:port range 0-65535
//	add KUBE-NODE-PORT-TCP 30080
//
// Only the name, type, family and range of a set are kept (hash tuning, bucketsize and initval
// are not something the proxier compares). An entry is the first word after the set name; the
// options that may follow it (comment "...", timeout, counters, nomatch) are dropped. The set
// comment is never known: the kernel keeps comments per entry, and `comment` on a create line
// only says the set has that extension.
func ParseSave(out string) ([]Content, error) {
	var sets []Content
	index := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch {
		case f[0] == "create" && len(f) >= 3:
			s := Set{Name: f[1], Type: f[2]}
			for i := 3; i+1 < len(f); i++ {
				switch f[i] {
				case "family":
					s.Family = f[i+1]
				case "range":
					s.Range = f[i+1]
				}
			}
			if _, dup := index[s.Name]; dup {
				return nil, fmt.Errorf("ipset save line %d: set %s listed twice", n, s.Name)
			}
			index[s.Name] = len(sets)
			sets = append(sets, Content{Set: s})
		case f[0] == "add" && len(f) >= 3:
			i, ok := index[f[1]]
			if !ok {
				return nil, fmt.Errorf("ipset save line %d: entry of unknown set %s", n, f[1])
			}
			sets[i].Entries = append(sets[i].Entries, f[2])
		default:
			return nil, fmt.Errorf("ipset save line %d: cannot parse %q", n, sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading ipset save: %w", err)
	}
	return sets, nil
}
