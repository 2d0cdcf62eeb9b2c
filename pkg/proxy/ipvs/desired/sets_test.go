package desired

import (
	"net/netip"
	"reflect"
	"testing"

	v1 "k8s.io/api/core/v1"
)

func TestSetCatalogue(t *testing.T) {
	type row struct{ name, typ, rng string }
	var got []row
	for _, s := range Sets(v1.IPv4Protocol) {
		got = append(got, row{s.Name, s.Type, s.Range})
		if s.Family != "inet" || s.Comment == "" {
			t.Errorf("%s: family %q comment %q", s.Name, s.Family, s.Comment)
		}
	}
	want := []row{
		{"KUBE-LOOP-BACK", "hash:ip,port,ip", ""},
		{"KUBE-CLUSTER-IP", "hash:ip,port", ""},
		{"KUBE-EXTERNAL-IP", "hash:ip,port", ""},
		{"KUBE-EXTERNAL-IP-LOCAL", "hash:ip,port", ""},
		{"KUBE-LOAD-BALANCER", "hash:ip,port", ""},
		{"KUBE-LOAD-BALANCER-FW", "hash:ip,port", ""},
		{"KUBE-LOAD-BALANCER-LOCAL", "hash:ip,port", ""},
		{"KUBE-LOAD-BALANCER-SOURCE-IP", "hash:ip,port,ip", ""},
		{"KUBE-LOAD-BALANCER-SOURCE-CIDR", "hash:ip,port,net", ""},
		{"KUBE-NODE-PORT-TCP", "bitmap:port", "0-65535"},
		{"KUBE-NODE-PORT-LOCAL-TCP", "bitmap:port", "0-65535"},
		{"KUBE-NODE-PORT-UDP", "bitmap:port", "0-65535"},
		{"KUBE-NODE-PORT-LOCAL-UDP", "bitmap:port", "0-65535"},
		{"KUBE-NODE-PORT-SCTP-HASH", "hash:ip,port", ""},
		{"KUBE-NODE-PORT-LOCAL-SCTP-HASH", "hash:ip,port", ""},
		{"KUBE-HEALTH-CHECK-NODE-PORT", "bitmap:port", "0-65535"},
		{"KUBE-IPVS-IPS", "hash:ip", ""},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("catalogue\n got %v\nwant %v", got, want)
	}
}

func TestIPv6SetNames(t *testing.T) {
	want := []string{
		"KUBE-6-LOOP-BACK",
		"KUBE-6-CLUSTER-IP",
		"KUBE-6-EXTERNAL-IP",
		"KUBE-6-EXTERNAL-IP-LOCAL",
		"KUBE-6-LOAD-BALANCER",
		"KUBE-6-LOAD-BALANCER-FW",
		"KUBE-6-LOAD-BALANCER-LOCAL",
		"KUBE-6-LOAD-BALANCER-SOURCE-IP",
		"KUBE-6-LOAD-BALANCER-SOURCE-CID", // cut to the kernel's 31 characters
		"KUBE-6-NODE-PORT-TCP",
		"KUBE-6-NODE-PORT-LOCAL-TCP",
		"KUBE-6-NODE-PORT-UDP",
		"KUBE-6-NODE-PORT-LOCAL-UDP",
		"KUBE-6-NODE-PORT-SCTP-HASH",
		"KUBE-6-NODE-PORT-LOCAL-SCTP-HAS",
		"KUBE-6-HEALTH-CHECK-NODE-PORT",
		"KUBE-6-IPVS-IPS",
	}
	var got []string
	seen := map[string]bool{}
	for _, s := range Sets(v1.IPv6Protocol) {
		got = append(got, s.Name)
		if s.Family != "inet6" {
			t.Errorf("%s family %q", s.Name, s.Family)
		}
		if len(s.Name) > 31 || seen[s.Name] {
			t.Errorf("%s too long or repeated", s.Name)
		}
		seen[s.Name] = true
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("IPv6 names\n got %v\nwant %v", got, want)
	}
}

func TestEntrySpelling(t *testing.T) {
	a := netip.MustParseAddr
	p := netip.MustParsePrefix
	for _, tc := range []struct{ got, want string }{
		{EntryIPPort(a("10.96.0.1"), v1.ProtocolTCP, 443), "10.96.0.1,tcp:443"},
		{EntryIPPort(a("10.96.0.10"), v1.ProtocolUDP, 53), "10.96.0.10,udp:53"},
		{EntryIPPort(a("192.168.0.10"), v1.ProtocolSCTP, 30001), "192.168.0.10,sctp:30001"},
		{EntryIPPort(a("::ffff:10.96.0.1"), v1.ProtocolTCP, 443), "10.96.0.1,tcp:443"},
		// IPv6 in the compressed form inet_ntop prints; a single zero group stays.
		{EntryIPPort(a("2001:0db8:0000:0000:0000:0000:0000:0001"), v1.ProtocolTCP, 80), "2001:db8::1,tcp:80"},
		{EntryIPPort(a("2001:db8:0:1:1:1:1:1"), v1.ProtocolTCP, 80), "2001:db8:0:1:1:1:1:1,tcp:80"},
		{EntryIPPortIP(a("10.244.0.5"), v1.ProtocolTCP, 8080, a("10.244.0.5")), "10.244.0.5,tcp:8080,10.244.0.5"},
		{EntryIPPortIP(a("fd00::5"), v1.ProtocolUDP, 53, a("fd00::5")), "fd00::5,udp:53,fd00::5"},
		{EntryIPPortNet(a("203.0.113.7"), v1.ProtocolTCP, 80, p("198.51.100.0/24")), "203.0.113.7,tcp:80,198.51.100.0/24"},
		// ipset prints the network address, and a host-length network without its length.
		{EntryIPPortNet(a("203.0.113.7"), v1.ProtocolTCP, 80, p("198.51.100.9/24")), "203.0.113.7,tcp:80,198.51.100.0/24"},
		{EntryIPPortNet(a("203.0.113.7"), v1.ProtocolTCP, 80, p("198.51.100.9/32")), "203.0.113.7,tcp:80,198.51.100.9"},
		{EntryIPPortNet(a("2001:db8::7"), v1.ProtocolTCP, 80, p("fd00::/64")), "2001:db8::7,tcp:80,fd00::/64"},
		{EntryIPPortNet(a("2001:db8::7"), v1.ProtocolTCP, 80, p("fd00::9/128")), "2001:db8::7,tcp:80,fd00::9"},
		{EntryPort(30080), "30080"},
		{EntryIP(a("fd00:96::a")), "fd00:96::a"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
