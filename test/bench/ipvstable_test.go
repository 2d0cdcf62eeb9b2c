package bench

import (
	"maps"
	"strings"
	"testing"
)

func TestParseIPVSTable(t *testing.T) {
	// /proc/net/ip_vs of kernel 6.1 (the lab's).
	table := `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port Forward Weight ActiveConn InActConn
TCP  0A600001:0050 rr
  -> 0A640000:1F90      Masq    1      0          0
  -> 0A650000:1F90      Masq    0      0          0
UDP  0A60000A:0035 rr
  -> 0A640001:0035      Masq    1      0          0
TCP  AC1E000B:7530 rr
TCP  [fd00:0000:0000:0000:0000:0000:0000:0001]:0050 rr
  -> [fd00:0000:0000:0000:0000:0000:0000:0002]:1F90      Masq    1      0          0
`
	got, err := parseIPVSTable(strings.NewReader(table))
	// Weight-0 real servers do not count; UDP and IPv6 virtual servers are not the bench's.
	want := map[string]int{"10.96.0.1:80": 1, "172.30.0.11:30000": 0}
	if err != nil || !maps.Equal(got, want) {
		t.Errorf("parseIPVSTable = %v, %v; want %v", got, err, want)
	}
}

// TestCPUTimes: the idle trigger of the cold start's read-back reads /proc/stat's cpu line.
func TestCPUTimes(t *testing.T) {
	idle, total := cpuTimes()
	if total == 0 || idle > total {
		t.Errorf("cpuTimes() = idle %d, total %d: want 0 < total, idle <= total", idle, total)
	}
}

func TestCountStraceCalls(t *testing.T) {
	const out = `143   sendto(5, [{nlmsg_len=36, nlmsg_type=0x1c /* NLMSG_??? */, ...}], 36, 0, NULL, 0) = 36
150   execve("/usr/sbin/ipset", ["ipset", "list", "-t"], 0xc0001 /* 9 vars */) = 0
143   sendmsg(7, {msg_name={sa_family=AF_NETLINK, nl_pid=0, nl_groups=00000000}, ...}, 0 <unfinished ...>
151   sendto(9, "\x01", 1, 0, NULL, 0) = 1
143   <... sendmsg resumed>) = 52
150   +++ exited with 0 +++
143   sendto(5, [{nlmsg_len=36, nlmsg_t`
	got, err := countStraceCalls(strings.NewReader(out), "sendmsg", "sendto", "execve")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"sendmsg": 1, "sendto": 3, "execve": 1}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
}
