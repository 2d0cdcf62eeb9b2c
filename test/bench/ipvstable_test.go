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
