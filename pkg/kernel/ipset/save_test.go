package ipset

import (
	"reflect"
	"testing"
)

func TestParseSave(t *testing.T) {
	// Captured from ipset v7.17 on Linux 6.18.
	out := `create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x5f7a9f1e
add KUBE-CLUSTER-IP 10.0.0.1,udp:53
add KUBE-CLUSTER-IP 10.0.0.1,sctp:53
create KUBE-6-LOOP-BACK hash:ip,port,ip family inet6 hashsize 1024 maxelem 65536 bucketsize 12 initval 0xf0b7f203
add KUBE-6-LOOP-BACK 2001:db8::1,tcp:80,2001:db8::2
create KUBE-NODE-PORT-TCP bitmap:port range 0-65535
add KUBE-NODE-PORT-TCP 30000

create D hash:ip,port,net family inet hashsize 1024 maxelem 65536 comment bucketsize 12 initval 0x276186e1
add D 10.0.0.1,tcp:80,10.1.0.0/16 comment "hello world"
add D 10.0.0.1,tcp:81,10.1.0.5 timeout 0 packets 0 bytes 0
create EMPTY hash:net family inet6 hashsize 1024 maxelem 65536 bucketsize 12 initval 0x16b33913
`
	want := []Content{
		{Set{Name: "KUBE-CLUSTER-IP", Type: HashIPPort, Family: "inet"}, []string{"10.0.0.1,udp:53", "10.0.0.1,sctp:53"}},
		{Set{Name: "KUBE-6-LOOP-BACK", Type: HashIPPortIP, Family: "inet6"}, []string{"2001:db8::1,tcp:80,2001:db8::2"}},
		{Set{Name: "KUBE-NODE-PORT-TCP", Type: BitmapPort, Range: "0-65535"}, []string{"30000"}},
		{Set{Name: "D", Type: HashIPPortNet, Family: "inet"}, []string{"10.0.0.1,tcp:80,10.1.0.0/16", "10.0.0.1,tcp:81,10.1.0.5"}},
		{Set{Name: "EMPTY", Type: HashNet, Family: "inet6"}, nil},
	}
	got, err := ParseSave(out)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseSave =\n%+v\nwant\n%+v", got, want)
	}
}

func TestParseSaveErrors(t *testing.T) {
	for name, out := range map[string]string{
		"add before create": "add A 1.2.3.4\n",
		"garbage":           "Name: A\n",
		"duplicate set":     "create A hash:ip\ncreate A hash:ip\n",
	} {
		if _, err := ParseSave(out); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if got, err := ParseSave(""); err != nil || len(got) != 0 {
		t.Errorf("empty output: %v, %v", got, err)
	}
}
