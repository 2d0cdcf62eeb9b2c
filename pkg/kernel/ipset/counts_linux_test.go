//go:build linux

package ipset

import (
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	utilexec "k8s.io/utils/exec"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/nlmsg"
)

// setHeader builds one message of a header dump as the kernel sends it; entries < 0 leaves the
// count out, as a kernel before the count was sent did.
func setHeader(name string, entries int) []byte {
	w := nlmsg.Writer{B: []byte{2, 0, 0, 0}}
	w.Put(ipsetAttrProtocol, []byte{7})
	w.Str(ipsetAttrSetName, name)
	w.Str(3, "hash:ip,port") // IPSET_ATTR_TYPENAME
	data := w.Nest(ipsetAttrData)
	w.Put(18|nlaFNetByteorder, binary.BigEndian.AppendUint32(nil, 1024)) // IPSET_ATTR_HASHSIZE
	if entries >= 0 {
		w.Put(ipsetAttrElements|nlaFNetByteorder, binary.BigEndian.AppendUint32(nil, uint32(entries)))
	}
	w.Put(25|nlaFNetByteorder, binary.BigEndian.AppendUint32(nil, 1)) // IPSET_ATTR_REFERENCES
	w.End(data)
	return w.B
}

func TestParseSetHeader(t *testing.T) {
	name, n, err := parseSetHeader(setHeader("KUBE-CLUSTER-IP", 30123))
	if err != nil || name != "KUBE-CLUSTER-IP" || n != 30123 {
		t.Errorf("parseSetHeader = %q, %d, %v; want KUBE-CLUSTER-IP, 30123, nil", name, n, err)
	}
	if _, n, err := parseSetHeader(setHeader("KUBE-EMPTY", 0)); err != nil || n != 0 {
		t.Errorf("an empty set: %d, %v", n, err)
	}
	if _, _, err := parseSetHeader(setHeader("KUBE-OLD", -1)); err == nil || !strings.Contains(err.Error(), "no entry count") {
		t.Errorf("a header without a count: err %v, want an error naming it", err)
	}
	for name, body := range map[string][]byte{
		"short":       {2, 0},
		"no name":     {2, 0, 0, 0, 5, 0, 1, 0, 7, 0, 0, 0},
		"bad attr":    {2, 0, 0, 0, 200, 0, 2, 0},
		"2-byte size": append([]byte{2, 0, 0, 0, 16, 0, 2, 0, 'A', 0, 0, 0}, 12, 0, 7, 0x80, 6, 0, 24, 0x40, 1, 2, 0, 0),
	} {
		if _, _, err := parseSetHeader(body); !errors.Is(err, nlmsg.ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
}

// TestEntryCountsFallsBackToTheTool: when the netlink read fails, EntryCounts runs `ipset list
// -t` and parses it.
func TestEntryCountsFallsBackToTheTool(t *testing.T) {
	fe := &fakeExec{out: "Name: KUBE-CLUSTER-IP\nType: hash:ip,port\nNumber of entries: 4\n"}
	x := &Kernel{exec: fe, headers: func() (map[string]int, error) { return nil, errors.New("no ip_set") }}
	got, err := x.EntryCounts()
	if err != nil || got["KUBE-CLUSTER-IP"] != 4 || len(fe.ran) != 1 || fe.ran[0] != "ipset list -t" {
		t.Errorf("EntryCounts = %v, %v after running %v; want the tool's count", got, err, fe.ran)
	}
	fe.ran = nil
	x.headers = func() (map[string]int, error) { return map[string]int{"KUBE-CLUSTER-IP": 5}, nil }
	if got, err := x.EntryCounts(); err != nil || got["KUBE-CLUSTER-IP"] != 5 || len(fe.ran) != 0 {
		t.Errorf("EntryCounts = %v, %v after running %v; want netlink's count and no process", got, err, fe.ran)
	}
}

// fakeExec records the commands it is asked to run; each writes out to its stdout.
type fakeExec struct {
	utilexec.Interface
	out string
	ran []string
}

func (e *fakeExec) Command(cmd string, args ...string) utilexec.Cmd {
	e.ran = append(e.ran, strings.Join(append([]string{cmd}, args...), " "))
	return &fakeCmd{out: e.out}
}

type fakeCmd struct {
	utilexec.Cmd
	out    string
	stdout io.Writer
}

func (c *fakeCmd) SetStdin(io.Reader)    {}
func (c *fakeCmd) SetStdout(w io.Writer) { c.stdout = w }
func (c *fakeCmd) SetStderr(io.Writer)   {}
func (c *fakeCmd) Run() error {
	_, err := io.WriteString(c.stdout, c.out)
	return err
}
