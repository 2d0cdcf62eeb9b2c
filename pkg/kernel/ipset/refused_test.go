package ipset

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestRefusedLine(t *testing.T) {
	for _, tc := range []struct {
		err  error
		line int
		ok   bool
	}{
		{nil, 0, false},
		{errors.New("exec: \"ipset\": executable file not found in $PATH"), 0, false},
		{fmt.Errorf("ipset restore -exist: exit status 1: ipset v7.17: Error in line 3: Hash is full, cannot add more elements"), 3, true},
		{errors.New("Error in line 0: nonsense"), 0, false},
		{errors.New("Error in line 99999999999999999999: overflow"), 0, false},
	} {
		line, ok := RefusedLine(tc.err)
		if line != tc.line || ok != tc.ok {
			t.Errorf("RefusedLine(%v) = %d, %v; want %d, %v", tc.err, line, ok, tc.line, tc.ok)
		}
	}
	// The fake says it the same way as the tool.
	f := NewFake()
	err := f.Apply([]Op{{Kind: Add, Set: Set{Name: "missing"}, Entry: "1.2.3.4"}})
	if line, ok := RefusedLine(err); !ok || line != 1 {
		t.Errorf("the fake's refusal %v: RefusedLine = %d, %v; want line 1", err, line, ok)
	}
}

// FuzzRefusedLine: any error text gives an answer, and a line only when the text names it.
func FuzzRefusedLine(f *testing.F) {
	f.Add("ipset v7.17: Error in line 3: Hash is full, cannot add more elements")
	f.Add("Error in line 0:")
	f.Add("Error in line -1: x")
	f.Add("Error in line 18446744073709551616: x")
	f.Add("exit status 1")
	f.Fuzz(func(t *testing.T, msg string) {
		line, ok := RefusedLine(errors.New(msg))
		if !ok {
			if line != 0 {
				t.Fatalf("%q: line %d without ok", msg, line)
			}
			return
		}
		// Leading zeros are allowed ("line 03"), so the number is not compared as text.
		if line <= 0 || !strings.Contains(msg, "Error in line ") {
			t.Fatalf("%q: line %d", msg, line)
		}
	})
}
