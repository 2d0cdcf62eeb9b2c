package ipset

import "testing"

func TestCanonical(t *testing.T) {
	v4 := func(typ string) Set { return Set{Name: "S", Type: typ, Family: "inet"} }
	v6 := func(typ string) Set { return Set{Name: "S", Type: typ, Family: "inet6"} }
	tests := []struct {
		set   Set
		entry string
		want  string // "" means an error
	}{
		{v4(HashIP), "10.0.0.1", "10.0.0.1"},
		{v4(HashIP), "2001:db8::1", ""},
		{v4(HashIP), "::ffff:10.0.0.1", ""},
		{v4(HashIP), "10.0.0.0/24", ""},
		{v6(HashIP), "2001:DB8:0::A", "2001:db8::a"},
		{v6(HashIP), "::ffff:1.2.3.4", "::ffff:1.2.3.4"},
		{v6(HashIP), "10.0.0.1", ""},
		{v4(HashIPPort), "10.0.0.1,80", "10.0.0.1,tcp:80"},
		{v4(HashIPPort), "10.0.0.1,UDP:53", "10.0.0.1,udp:53"},
		{v4(HashIPPort), "10.0.0.1,sctp:0", "10.0.0.1,sctp:0"},
		{v4(HashIPPort), "10.0.0.1,icmp:ping", ""},
		{v4(HashIPPort), "10.0.0.1,tcp:65536", ""},
		{v4(HashIPPort), "10.0.0.1", ""},
		{v6(HashIPPortIP), "2001:db8::1,tcp:80,2001:0db8::0002", "2001:db8::1,tcp:80,2001:db8::2"},
		{v4(HashIPPortNet), "10.0.0.1,tcp:80,10.1.2.3/16", "10.0.0.1,tcp:80,10.1.0.0/16"},
		{v4(HashIPPortNet), "10.0.0.1,tcp:81,10.1.0.5/32", "10.0.0.1,tcp:81,10.1.0.5"},
		{v4(HashIPPortNet), "10.0.0.1,tcp:81,10.1.0.5/0", ""},
		{v6(HashIPPortNet), "2001:db8::1,udp:53,2001:db8:1:2::5/64", "2001:db8::1,udp:53,2001:db8:1:2::/64"},
		{v6(HashIPPortNet), "2001:db8::1,53,2001:db8::7/128", "2001:db8::1,tcp:53,2001:db8::7"},
		{v4(HashNet), "10.3.0.5", "10.3.0.5"},
		{Set{Type: BitmapPort}, "tcp:30001", "30001"},
		{Set{Type: BitmapPort, Range: "1000-2000"}, "3000", ""},
		{Set{Type: BitmapPort, Range: "1000-2000"}, "1500", "1500"},
		{Set{Type: "list:set"}, "A", ""},
	}
	for _, tt := range tests {
		got, err := Canonical(tt.set, tt.entry)
		if tt.want == "" && err == nil || tt.want != "" && (err != nil || got != tt.want) {
			t.Errorf("Canonical(%s %s, %q) = %q, %v; want %q", tt.set.Type, tt.set.Family, tt.entry, got, err, tt.want)
		}
	}
}

func TestAsListed(t *testing.T) {
	if got := AsListed(Set{Name: "A", Type: BitmapPort, Family: "inet", Comment: "c"}); got != (Set{Name: "A", Type: BitmapPort, Range: DefaultPortRange}) {
		t.Errorf("bitmap AsListed = %+v", got)
	}
	if got := AsListed(Set{Name: "A", Type: HashIP, Range: "1-2"}); got != (Set{Name: "A", Type: HashIP, Family: "inet"}) {
		t.Errorf("hash AsListed = %+v", got)
	}
}
