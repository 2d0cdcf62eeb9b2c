package diagnose

import (
	"fmt"
	"testing"
)

func TestSplitRule(t *testing.T) {
	got, err := splitRule(`-A X -m comment --comment "a \"quoted\" b" -j MASQUERADE --random-fully`)
	if err != nil {
		t.Fatal(err)
	}
	want := `[-A X -m comment --comment a "quoted" b -j MASQUERADE --random-fully]`
	if fmt.Sprint(got) != want {
		t.Fatalf("got %q", got)
	}
	if _, err := splitRule(`-A X --comment "open`); err == nil {
		t.Fatal("unterminated quote accepted")
	}
}

func TestMatchAndMark(t *testing.T) {
	r := newRule("", "C", []string{"-p", "udp", "-m", "udp", "--dport", "8000:9000", "-m", "mark", "!", "--mark", "0x4000/0x4000", "-j", "MARK", "--set-xmark", "0x4000/0x0"})
	for _, tc := range []struct {
		p    packet
		want tri
	}{
		{packet{Proto: "udp", DPort: 8472}, yes},
		{packet{Proto: "udp", DPort: 8472, Mark: 0x4000}, no},
		{packet{Proto: "tcp", DPort: 8472}, no},
		{packet{Proto: "udp", DPort: 4789}, no},
		{packet{}, maybe},
	} {
		if got := tc.p.match(r); got != tc.want {
			t.Errorf("%+v: %v, want %v", tc.p, got, tc.want)
		}
	}
	if m := applyMark(0x4001, r); m != 0x0001 {
		t.Errorf("--set-xmark 0x4000/0x0 on 0x4001: %#x", m)
	}
	or := newRule("", "C", []string{"-j", "MARK", "--or-mark", "0x4000"})
	if !setsBits(or, 0x4000) || setsBits(r, 0x4000) {
		t.Error("setsBits")
	}
}

func TestKernelRelease(t *testing.T) {
	for rel, want := range map[string]bool{
		"3.10.0-1127.el7.x86_64": true, "4.14.180": true, "4.14.181": false, "4.19.122-flatcar": true,
		"5.4.0-42-generic": true, "5.4.41": false, "5.5.19": true, "5.7.0": false, "6.1.0-28-amd64": false,
	} {
		got, known, why := udpCsumBug(rel)
		if !known || got != want {
			t.Errorf("%s: affected %v (known %v, %s), want %v", rel, got, known, why, want)
		}
	}
	if _, known, _ := udpCsumBug("weird"); known {
		t.Error("unparsable release known")
	}
}
