package diagnose

import (
	"fmt"
	"sort"
	"strings"
)

// The ids of the checks: stable, the JSON output and the metrics key on them.
const (
	IDVXLANChecksum          = "vxlan-checksum-offload"
	IDTunnelDoubleMasquerade = "tunnel-double-masquerade"
	IDLBIngressMartian       = "lb-ingress-martian"
	IDAddressCollision       = "service-address-collision"
	IDLBIngressUnbound       = "lb-ingress-unbound"
	IDIPVSSysctl             = "ipvs-sysctl"
	IDStrayAddress           = "kube-ipvs0-stray-address"
	IDNotProgrammed          = "service-not-programmed"
)

// check is one diagnosis: a pure function of the Snapshot.
type check struct {
	ID    string
	Title string
	// Needs are the sources without which the check cannot say anything: it is skipped.
	Needs []Source
	// Partial are sources it uses when present; without them it runs on less and says so.
	Partial []Source
	Run     func(s *Snapshot) []Finding
}

// checks in the order they are documented (docs/diagnose.md).
var checks = []check{
	vxlanChecksumCheck,
	lbIngressMartianCheck,
	tunnelDoubleMasqueradeCheck,
	addressCollisionCheck,
	lbIngressUnboundCheck,
	ipvsSysctlCheck,
	strayAddressCheck,
	notProgrammedCheck,
}

// CheckStatus says what became of one check: "found", "ok" or "skipped".
type CheckStatus struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	// Reason: why it was skipped, or which sources a partial run went without.
	Reason string `json:"reason,omitempty"`
}

// SourceStatus says whether a source could be read.
type SourceStatus struct {
	Name  Source `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// Report is the outcome of every check over one Snapshot. Its JSON form is the documented
// schema of --output=json (docs/diagnose.md); fields are only ever added.
type Report struct {
	SchemaVersion string         `json:"schemaVersion"`
	Node          string         `json:"node"`
	Kernel        string         `json:"kernel"`
	Findings      []Finding      `json:"findings"`
	Checks        []CheckStatus  `json:"checks"`
	Sources       []SourceStatus `json:"sources"`
}

// SchemaVersion of Report's JSON.
const SchemaVersion = "diagnose.kube-proxy-ipvs.io/v1"

var allSources = []Source{SourceKernelRelease, SourceLinks, SourceRoutes, SourceSysctls, SourceIPTables,
	SourceIPVS, SourceIPSets, SourceKernelLog, SourceServices, SourceEndpointSlices, SourceNodes}

// Run runs every check on s. Findings come worst first, then by id and title.
func Run(s *Snapshot) Report {
	rep := Report{SchemaVersion: SchemaVersion, Node: s.NodeName, Kernel: s.KernelRelease, Findings: []Finding{}}
	for _, src := range allSources {
		st := SourceStatus{Name: src, OK: true}
		if r, gone := s.Missing[src]; gone {
			st.OK, st.Error = false, r
		}
		rep.Sources = append(rep.Sources, st)
	}
	for _, c := range checks {
		if src, reason, ok := s.has(c.Needs...); !ok {
			rep.Checks = append(rep.Checks, CheckStatus{ID: c.ID, Status: "skipped", Reason: fmt.Sprintf("%s not read: %s", src, reason)})
			continue
		}
		found := c.Run(s)
		st := CheckStatus{ID: c.ID, Status: "ok"}
		if len(found) > 0 {
			st.Status = "found"
		}
		var without []string
		for _, src := range c.Partial {
			if _, gone := s.Missing[src]; gone {
				without = append(without, string(src))
			}
		}
		if len(without) > 0 {
			st.Reason = "partial: without " + strings.Join(without, ", ")
		}
		rep.Checks = append(rep.Checks, st)
		rep.Findings = append(rep.Findings, found...)
	}
	sort.SliceStable(rep.Findings, func(i, j int) bool {
		a, b := rep.Findings[i], rep.Findings[j]
		if a.Severity != b.Severity {
			return a.Severity > b.Severity
		}
		if a.ID != b.ID {
			return a.ID < b.ID
		}
		return a.Title < b.Title
	})
	return rep
}

// Worst is the highest severity found, and whether anything was.
func (r Report) Worst() (Severity, bool) {
	if len(r.Findings) == 0 {
		return Info, false
	}
	return r.Findings[0].Severity, true
}

// Fails reports whether a finding at or above failOn was made: the exit status.
func (r Report) Fails(failOn Severity) bool {
	w, any := r.Worst()
	return any && w >= failOn
}
