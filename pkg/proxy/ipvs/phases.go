package ipvs

import (
	"strings"
	"time"
)

// durations adds up time by name, in the order the names first came: the sync's steps
// (phases) and its kernel operations by kind (kernelMeter) are both logged this way.
type durations struct {
	names []string
	took  []time.Duration
}

// add adds d under name.
func (t *durations) add(name string, d time.Duration) {
	for i, n := range t.names {
		if n == name {
			t.took[i] += d
			return
		}
	}
	t.names = append(t.names, name)
	t.took = append(t.took, d)
}

// String is "load=1.2s desired=3ms ...", in the order the names first came.
func (t *durations) String() string {
	var b strings.Builder
	for i, n := range t.names {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(n)
		b.WriteByte('=')
		b.WriteString(t.took[i].Round(100 * time.Microsecond).String())
	}
	return b.String()
}

// phases times the steps of one sync, so that the sync's log line says where its time went
// (loading the kernel state, reading the node, computing the desired state, applying it,
// draining). A nil *phases records nothing.
type phases struct {
	last time.Time
	durations
}

func startPhases() *phases { return &phases{last: time.Now()} }

// done closes the step that ran since the previous one (or since the start) under name.
// A name given twice adds up.
func (p *phases) done(name string) {
	if p == nil {
		return
	}
	now := time.Now()
	p.add(name, now.Sub(p.last))
	p.last = now
}

// String is the steps' times (durations.String); "" for a nil *phases.
func (p *phases) String() string {
	if p == nil {
		return ""
	}
	return p.durations.String()
}
