package ipvs

import (
	"strings"
	"time"
)

// phases times the steps of one sync, so that the sync's log line says where its time went
// (reading the kernel back, computing the desired state, ipsets, addresses, virtual servers,
// iptables). A nil *phases records nothing.
type phases struct {
	last  time.Time
	names []string
	took  []time.Duration
}

func startPhases() *phases { return &phases{last: time.Now()} }

// done closes the step that ran since the previous one (or since the start) under name.
// A name given twice adds up.
func (p *phases) done(name string) {
	if p == nil {
		return
	}
	now := time.Now()
	d := now.Sub(p.last)
	p.last = now
	for i, n := range p.names {
		if n == name {
			p.took[i] += d
			return
		}
	}
	p.names = append(p.names, name)
	p.took = append(p.took, d)
}

// String is "load=1.2s desired=3ms ...", in the order the steps first ran.
func (p *phases) String() string {
	if p == nil {
		return ""
	}
	var b strings.Builder
	for i, n := range p.names {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(n)
		b.WriteByte('=')
		b.WriteString(p.took[i].Round(100 * time.Microsecond).String())
	}
	return b.String()
}
