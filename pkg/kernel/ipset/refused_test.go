package ipset

import (
	"errors"
	"fmt"
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
