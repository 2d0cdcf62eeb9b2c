package diagnose

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteJSON writes the report as documented in docs/diagnose.md.
func WriteJSON(w io.Writer, r Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

var colours = map[Severity]string{Error: "\x1b[31m", Warning: "\x1b[33m", Info: "\x1b[36m"}

const reset = "\x1b[0m"

// WriteText writes the report for a person: findings worst first, each with its evidence, why
// and fix; then the checks that were skipped and the sources that could not be read.
func WriteText(w io.Writer, r Report, colour bool) error {
	var b strings.Builder
	sev := func(s Severity) string {
		t := strings.ToUpper(s.String())
		if colour {
			return colours[s] + t + reset
		}
		return t
	}
	fmt.Fprintf(&b, "kube-proxy diagnose: node %s, kernel %s\n", r.Node, r.Kernel)
	if len(r.Findings) == 0 {
		b.WriteString("\nNo findings.\n")
	}
	var last Severity = -1
	for _, f := range r.Findings {
		if f.Severity != last {
			count := 0
			for _, g := range r.Findings {
				if g.Severity == f.Severity {
					count++
				}
			}
			fmt.Fprintf(&b, "\n== %s (%d)\n", sev(f.Severity), count)
			last = f.Severity
		}
		fmt.Fprintf(&b, "\n[%s] %s: %s\n", sev(f.Severity), f.ID, f.Title)
		b.WriteString("  evidence:\n")
		for _, e := range f.Evidence {
			fmt.Fprintf(&b, "    %s\n", e)
		}
		fmt.Fprintf(&b, "  why: %s\n  fix: %s\n", f.Why, f.Fix)
	}
	b.WriteString("\nChecks:\n")
	for _, c := range r.Checks {
		line := fmt.Sprintf("  %-26s %s", c.ID, c.Status)
		if c.Reason != "" {
			line += " (" + c.Reason + ")"
		}
		b.WriteString(line + "\n")
	}
	var bad []string
	for _, s := range r.Sources {
		if !s.OK {
			bad = append(bad, fmt.Sprintf("  %s: %s", s.Name, s.Error))
		}
	}
	if len(bad) > 0 {
		b.WriteString("Not read:\n" + strings.Join(bad, "\n") + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
