// Command e2ereport turns the `go test -json` (test2json) stream of the e2e suite into a Markdown
// report: one row per scenario, one column per kube-proxy implementation, PASS/FAIL/SKIP with
// timings, plus the run's phase timings. Used by hack/e2e.sh.
//
// Tests are named TestProxy/<impl>/<Scenario>; a skip or failure of TestProxy/<impl> (the cluster
// setup) applies to every scenario of that implementation. Other top-level tests (TestSwap,
// TestIPTablesParity: they run once, with both implementations) get a table of their own.
//
// Usage: e2ereport -in e2e.json -out report.md [-phase "name=seconds"]... ; exit status 1 when any
// test failed or nothing ran.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
)

type event struct {
	Action  string
	Test    string
	Elapsed float64
	Output  string
}

type result struct {
	action  string // pass, fail, skip, or "" (never finished)
	elapsed float64
	output  []string
}

type phases []string

func (p *phases) String() string     { return strings.Join(*p, ",") }
func (p *phases) Set(v string) error { *p = append(*p, v); return nil }

func main() {
	in := flag.String("in", "", "test2json stream")
	out := flag.String("out", "", "markdown report to write (default stdout)")
	title := flag.String("title", "kube-proxy-ipvs e2e report", "report title")
	var ph phases
	flag.Var(&ph, "phase", "name=seconds, repeatable: timings of the run's phases")
	flag.Parse()

	f, err := os.Open(*in)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer f.Close()
	results := map[string]*result{}
	var order []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Test == "" {
			continue
		}
		r := results[e.Test]
		if r == nil {
			r = &result{}
			results[e.Test] = r
			order = append(order, e.Test)
		}
		switch e.Action {
		case "pass", "fail", "skip":
			r.action, r.elapsed = e.Action, e.Elapsed
		case "output":
			r.output = append(r.output, e.Output)
		}
	}

	var impls, scenarios []string
	seen := map[string]bool{}
	for _, name := range order {
		parts := strings.Split(name, "/")
		if parts[0] != "TestProxy" || len(parts) < 2 {
			continue
		}
		if !seen["i:"+parts[1]] {
			seen["i:"+parts[1]] = true
			impls = append(impls, parts[1])
		}
		if len(parts) >= 3 && !seen["s:"+parts[2]] {
			seen["s:"+parts[2]] = true
			scenarios = append(scenarios, parts[2])
		}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", *title)
	failed, passed, skipped := 0, 0, 0
	if len(scenarios) > 0 {
		fmt.Fprintf(&b, "| scenario | %s |\n|---|%s\n", strings.Join(impls, " | "), strings.Repeat("---|", len(impls)))
		for _, s := range scenarios {
			row := []string{s}
			for _, im := range impls {
				cell, st := cellFor(results, im, s)
				switch st {
				case "pass":
					passed++
				case "fail", "":
					failed++
				case "skip":
					skipped++
				}
				row = append(row, cell)
			}
			fmt.Fprintf(&b, "| %s |\n", strings.Join(row, " | "))
		}
		b.WriteString("\n")
	}
	// Scenarios that run once with both implementations: other top-level tests (TestSwap ...).
	var once []string
	for _, name := range order {
		if !strings.Contains(name, "/") && name != "TestProxy" && name != "TestDemo" {
			once = append(once, name)
		}
	}
	if len(once) > 0 {
		b.WriteString("| scenario (runs once, both implementations) | result |\n|---|---|\n")
		for _, name := range once {
			r := results[name]
			cell := "**did not finish**"
			switch r.action {
			case "pass":
				passed++
				cell = fmt.Sprintf("PASS %.1fs", r.elapsed)
			case "skip":
				skipped++
				cell = "SKIP: " + reason(r)
			case "fail":
				failed++
				cell = fmt.Sprintf("**FAIL** %.1fs", r.elapsed)
			default:
				failed++
			}
			fmt.Fprintf(&b, "| %s | %s |\n", strings.TrimPrefix(name, "Test"), cell)
		}
		b.WriteString("\n")
	}
	// Implementations that never reached a scenario (skipped or failed during cluster setup).
	for _, im := range impls {
		r := results["TestProxy/"+im]
		if r == nil {
			continue
		}
		fmt.Fprintf(&b, "- **%s**: cluster %s in %.1fs", im, word(r.action), r.elapsed)
		if msg := reason(r); msg != "" && (r.action == "skip" || (r.action == "fail" && !hasFailedChild(results, "TestProxy/"+im))) {
			fmt.Fprintf(&b, ": %s", msg)
		}
		b.WriteString("\n")
	}
	if top := results["TestProxy"]; top != nil && top.action == "skip" {
		fmt.Fprintf(&b, "- all skipped: %s\n", reason(top))
	}
	fmt.Fprintf(&b, "\n%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if len(ph) > 0 {
		b.WriteString("\n## Timings\n\n| phase | seconds |\n|---|---|\n")
		for _, p := range ph {
			k, v, _ := strings.Cut(p, "=")
			fmt.Fprintf(&b, "| %s | %s |\n", k, v)
		}
	}
	// Failure details.
	var failures []string
	for _, name := range order {
		if r := results[name]; r.action == "fail" && !hasFailedChild(results, name) {
			failures = append(failures, name)
		}
	}
	sort.Strings(failures)
	for _, name := range failures {
		own := ownLines(results[name].output)
		if len(own) > 40 {
			own = own[len(own)-40:]
		}
		fmt.Fprintf(&b, "\n## FAIL %s\n\n```\n%s\n```\n(full output: _output/e2e/e2e.out; logs: _output/e2e/artifacts)\n", name, strings.Join(own, "\n"))
	}

	if *out == "" {
		fmt.Print(b.String())
	} else if err := os.WriteFile(*out, []byte(b.String()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if failed > 0 || anyFail(results) || (passed == 0 && skipped == 0) {
		os.Exit(1)
	}
}

func cellFor(results map[string]*result, impl, scenario string) (string, string) {
	if r := results["TestProxy/"+impl+"/"+scenario]; r != nil {
		switch r.action {
		case "pass":
			return fmt.Sprintf("PASS %.1fs", r.elapsed), "pass"
		case "skip":
			return "SKIP: " + reason(r), "skip"
		case "fail":
			return fmt.Sprintf("**FAIL** %.1fs", r.elapsed), "fail"
		}
		return "**did not finish**", ""
	}
	if r := results["TestProxy/"+impl]; r != nil && r.action == "skip" {
		return "SKIP (see below)", "skip"
	}
	return "**not run**", "fail"
}

func word(a string) string {
	switch a {
	case "pass":
		return "passed"
	case "fail":
		return "FAILED"
	case "skip":
		return "skipped"
	}
	return "did not finish"
}

// ownLines: the test's own t.Log/t.Skip/t.Fatal lines ("    file.go:N: msg", 4-space indent),
// without their continuation lines (dumps of state and logs are indented deeper).
func ownLines(out []string) []string {
	var own []string
	for _, o := range out {
		if !strings.HasPrefix(o, "    ") || strings.HasPrefix(o, "     ") {
			continue
		}
		s := strings.TrimSpace(o)
		if i := strings.Index(s, ".go:"); i > 0 && !strings.Contains(s[:i], " ") {
			own = append(own, s)
		}
	}
	return own
}

// reason: the t.Skip/t.Fatal message, i.e. the last of the test's own lines, without file:line.
func reason(r *result) string {
	msg := ""
	if own := ownLines(r.output); len(own) > 0 {
		msg = own[len(own)-1]
		if i := strings.Index(msg, ".go:"); i > 0 {
			if j := strings.Index(msg[i:], ": "); j > 0 {
				msg = msg[i+j+2:]
			}
		}
	}
	msg = strings.ReplaceAll(msg, "|", "\\|")
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	return msg
}

func hasFailedChild(results map[string]*result, name string) bool {
	for n, r := range results {
		if strings.HasPrefix(n, name+"/") && r.action == "fail" {
			return true
		}
	}
	return false
}

func anyFail(results map[string]*result) bool {
	for _, r := range results {
		if r.action == "fail" {
			return true
		}
	}
	return false
}
