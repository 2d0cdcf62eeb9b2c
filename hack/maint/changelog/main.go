// Command changelog prints the CHANGELOG.md entry of one release, for the release notes
// (hack/release.sh, make release):
//
//	go run ./hack/maint/changelog -version v1.37.2+ipvs.1 CHANGELOG.md
//
// An entry is the text from its heading "## <version>" (optionally followed by " - date" or
// " (date)") to the next "## " heading. It fails when the version has no entry, when the entry
// is empty, or when it appears twice: a release must not ship without its notes.
package main

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
)

func main() {
	version := flag.String("version", "", "the release, e.g. v1.37.2+ipvs.1")
	flag.Parse()
	if *version == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: changelog -version VERSION CHANGELOG.md")
		os.Exit(2)
	}
	data, err := os.ReadFile(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "changelog:", err)
		os.Exit(1)
	}
	entry, err := Entry(string(data), *version)
	if err != nil {
		fmt.Fprintln(os.Stderr, "changelog:", err)
		os.Exit(1)
	}
	fmt.Print(entry)
}

// Entry returns version's entry of changelog: its heading line and its body, trailing blank
// lines removed, ending in one newline.
func Entry(changelog, version string) (string, error) {
	heading := regexp.MustCompile(`^## ` + regexp.QuoteMeta(version) + `(\s+(-|–)\s+\S.*|\s+\(.*\))?\s*$`)
	lines := strings.Split(strings.ReplaceAll(changelog, "\r\n", "\n"), "\n")
	start, end, found := -1, len(lines), 0
	inFence := false
	for i, l := range lines {
		if strings.HasPrefix(l, "```") {
			inFence = !inFence
		}
		if inFence || !strings.HasPrefix(l, "## ") {
			continue
		}
		if heading.MatchString(l) {
			found++
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 && end == len(lines) && i > start {
			end = i
		}
	}
	switch {
	case found == 0:
		return "", fmt.Errorf("no entry for %s (a heading \"## %s\")", version, version)
	case found > 1:
		return "", fmt.Errorf("%d entries for %s", found, version)
	}
	body := strings.TrimRight(strings.Join(lines[start:end], "\n"), "\n \t")
	if strings.TrimSpace(strings.Join(lines[start+1:end], "\n")) == "" {
		return "", fmt.Errorf("the entry for %s is empty", version)
	}
	return body + "\n", nil
}
