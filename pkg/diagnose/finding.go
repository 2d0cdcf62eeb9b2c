// Package diagnose finds, on a live node, the IPVS failure modes operators hit (issue 22):
// the VXLAN checksum-offload bug with --random-fully, LoadBalancer health checks dropped as
// martians, double masquerade of tunnel traffic, Service addresses that collide with a node's
// or the apiserver's, and drift between the cluster and the kernel.
//
// Collection (collect*.go: the kernel and, optionally, the apiserver) fills a Snapshot; the
// checks (check_*.go) are pure functions of that Snapshot, so each is table-tested on fixtures.
// Nothing here writes to the kernel or the cluster.
package diagnose

import "fmt"

// Severity orders findings: a report lists the worst first, and --fail-on compares against it.
type Severity int

const (
	Info Severity = iota
	Warning
	Error
)

func (s Severity) String() string {
	switch s {
	case Info:
		return "info"
	case Warning:
		return "warning"
	case Error:
		return "error"
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// ParseSeverity reads "info", "warning" or "error".
func ParseSeverity(s string) (Severity, error) {
	for _, v := range []Severity{Info, Warning, Error} {
		if v.String() == s {
			return v, nil
		}
	}
	return 0, fmt.Errorf("severity %q: want info, warning or error", s)
}

func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	*s = v
	return err
}

// Finding is one condition a check saw. Evidence holds the exact objects and lines it was
// decided on, so an operator can verify it with the usual tools.
type Finding struct {
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	Title    string   `json:"title"`
	Evidence []string `json:"evidence"`
	Why      string   `json:"why"`
	Fix      string   `json:"fix"`
}
