package ipset

import (
	"fmt"
	"strconv"
	"strings"

	"k8s.io/klog/v2"
)

// EntryCounts returns every set's entry count from the sets' headers, not their entries: at ten
// thousand Services reading the headers costs a fraction of an `ipset save` of some thirty
// thousand entries and the parsing of them. It asks the kernel over netlink (counts_linux.go),
// which a periodic verification does every syncPeriod per family: a process launch each time
// cost more than the rest of an idle verification's ipset work. When that fails it runs one
// `ipset list -t`, which prints the same headers.
func (x *Kernel) EntryCounts() (map[string]int, error) {
	if x.headers != nil {
		counts, err := x.headers()
		if err == nil {
			return counts, nil
		}
		klog.V(2).InfoS("Reading ipset headers over netlink failed; running ipset list -t", "err", err)
	}
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
			if err != nil || n < 0 || name == "" {
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
