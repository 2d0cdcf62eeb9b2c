package ipset

import (
	"maps"
	"testing"
)

func TestParseTerse(t *testing.T) {
	// ipset v7.17 `list -t`, as printed on Debian bookworm.
	out := `Name: KUBE-CLUSTER-IP
Type: hash:ip,port
Revision: 6
Header: family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x5f7a9f1e
Size in memory: 344
References: 2
Number of entries: 3

Name: KUBE-NODE-PORT-TCP
Type: bitmap:port
Revision: 3
Header: range 0-65535
Size in memory: 8268
References: 1
Number of entries: 0
`
	got, err := ParseTerse(out)
	if want := map[string]int{"KUBE-CLUSTER-IP": 3, "KUBE-NODE-PORT-TCP": 0}; err != nil || !maps.Equal(got, want) {
		t.Errorf("ParseTerse = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{
		"Name: A\nType: hash:ip\n",                 // no count (old ipset)
		"Name: A\nName: B\nNumber of entries: 1\n", // A has none
		"Name: A\nNumber of entries: many\n",       // not a number
		"Number of entries: 1\n",                   // no name
		"Name: A\nNumber of entries: -1\n",         // a count no set has
	} {
		if got, err := ParseTerse(bad); err == nil {
			t.Errorf("ParseTerse(%q) = %v, want an error", bad, got)
		}
	}
}
