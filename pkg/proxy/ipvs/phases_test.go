package ipvs

import (
	"regexp"
	"testing"
)

func TestPhases(t *testing.T) {
	var none *phases
	none.done("x") // a nil timer records nothing and does not panic
	if none.String() != "" {
		t.Errorf("nil phases = %q", none.String())
	}

	p := startPhases()
	p.done("load")
	p.done("ipvs")
	p.done("load")
	got := p.String()
	if !regexp.MustCompile(`^load=\S+ ipvs=\S+$`).MatchString(got) {
		t.Errorf("phases = %q, want each name once, in first-run order", got)
	}
}
