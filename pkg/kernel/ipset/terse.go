package ipset

import (
	"fmt"
	"strconv"
	"strings"
)

// EntryCounts runs one `ipset list -t`, which prints each set's header and not its entries, and
// returns every set's entry count. At ten thousand Services reading the headers costs a
// fraction of an `ipset save` of some thirty thousand entries and the parsing of them.
func (x *Exec) EntryCounts() (map[string]int, error) {
	out, err := x.run("", "list", "-t")
	if err != nil {
		return nil, err
	}
	return ParseTerse(out)
}

// ParseTerse reads `ipset list -t` output:
//
//	Name: KUBE-CLUSTER-IP
//	Type: hash:ip,port
//	...
//	Number of entries: 3
//
// A set without a "Number of entries" line (an ipset that does not print it) is an
// error: the caller then reads the entries instead.
func ParseTerse(out string) (map[string]int, error) {
	counts := map[string]int{}
	name := ""
	for _, line := range strings.Split(out, "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch key {
		case "Name":
			if name != "" {
				return nil, fmt.Errorf("ipset list -t: no entry count for set %s", name)
			}
			name = val
		case "Number of entries":
			n, err := strconv.Atoi(val)
			if err != nil || name == "" {
				return nil, fmt.Errorf("ipset list -t: bad line %q", line)
			}
			counts[name] = n
			name = ""
		}
	}
	if name != "" {
		return nil, fmt.Errorf("ipset list -t: no entry count for set %s", name)
	}
	return counts, nil
}
