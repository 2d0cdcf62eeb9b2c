package ipset

import "testing"

func TestRenderRestore(t *testing.T) {
	ops := []Op{
		{Kind: Create, Set: Set{Name: "KUBE-CLUSTER-IP", Type: HashIPPort, Family: "inet", Comment: "not rendered"}},
		{Kind: Create, Set: Set{Name: "KUBE-6-LOAD-BALANCER-SOURCE-CID", Type: HashIPPortNet, Family: "inet6"}},
		{Kind: Create, Set: Set{Name: "KUBE-NODE-PORT-UDP", Type: BitmapPort, Family: "inet"}},
		{Kind: Create, Set: Set{Name: "P", Type: BitmapPort, Range: "30000-32767"}},
		{Kind: Create, Set: Set{Name: "KUBE-IPVS-IPS", Type: HashIP}},
		{Kind: Add, Set: Set{Name: "KUBE-CLUSTER-IP"}, Entry: "10.96.0.1,tcp:443"},
		{Kind: Del, Set: Set{Name: "KUBE-CLUSTER-IP"}, Entry: "10.96.0.2,udp:53"},
		{Kind: Flush, Set: Set{Name: "P"}},
		{Kind: Destroy, Set: Set{Name: "P"}},
	}
	want := `create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536
create KUBE-6-LOAD-BALANCER-SOURCE-CID hash:ip,port,net family inet6 hashsize 1024 maxelem 65536
create KUBE-NODE-PORT-UDP bitmap:port range 0-65535
create P bitmap:port range 30000-32767
create KUBE-IPVS-IPS hash:ip family inet hashsize 1024 maxelem 65536
add KUBE-CLUSTER-IP 10.96.0.1,tcp:443
del KUBE-CLUSTER-IP 10.96.0.2,udp:53
flush P
destroy P
`
	got, err := RenderRestore(ops)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("RenderRestore =\n%s\nwant\n%s", got, want)
	}
}

func TestRenderRestoreRejects(t *testing.T) {
	for name, op := range map[string]Op{
		"entry with newline": {Kind: Add, Set: Set{Name: "A"}, Entry: "1.2.3.4\nflush B"},
		"empty entry":        {Kind: Del, Set: Set{Name: "A"}},
		"name with space":    {Kind: Flush, Set: Set{Name: "A B"}},
		"long name":          {Kind: Flush, Set: Set{Name: "KUBE-6-LOAD-BALANCER-SOURCE-CIDR-X"}},
		"unknown type":       {Kind: Create, Set: Set{Name: "A", Type: "list:set"}},
		"bad family":         {Kind: Create, Set: Set{Name: "A", Type: HashIP, Family: "inet4"}},
		"bad range":          {Kind: Create, Set: Set{Name: "A", Type: BitmapPort, Range: "9-1"}},
		// ipset reads each word as a C string: a NUL ends it there, and the rest of the line
		// would be dropped or misread; no name or entry the proxier writes holds one.
		"NUL in entry":      {Kind: Add, Set: Set{Name: "A"}, Entry: "10.0.0.1\x00,tcp:80"},
		"NUL in name":       {Kind: Flush, Set: Set{Name: "A\x00B"}},
		"vertical tab":      {Kind: Add, Set: Set{Name: "A"}, Entry: "10.0.0.1\v"},
		"form feed in name": {Kind: Destroy, Set: Set{Name: "A\fB"}},
		"escape in entry":   {Kind: Del, Set: Set{Name: "A"}, Entry: "10.0.0.1\x1b[2J"},
		"DEL in entry":      {Kind: Del, Set: Set{Name: "A"}, Entry: "10.0.0.1\x7f"},
		"unicode space":     {Kind: Add, Set: Set{Name: "A"}, Entry: "10.0.0.1\u00a0x"},
		"next line":         {Kind: Add, Set: Set{Name: "A"}, Entry: "10.0.0.1\u0085x"},
		"option as entry":   {Kind: Add, Set: Set{Name: "A"}, Entry: "-exist"},
		"option as name":    {Kind: Flush, Set: Set{Name: "-!"}},
	} {
		if _, err := RenderRestore([]Op{op}); err == nil {
			t.Errorf("%s: rendered", name)
		}
	}
}
