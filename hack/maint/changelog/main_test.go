package main

import (
	"os"
	"strings"
	"testing"
)

const sample = "# Changelog\n\nIntro.\n\n" +
	"## v1.37.2+ipvs.2 - 2026-12-20\n\n### Fixed\n- b\n\n" +
	"## v1.37.2+ipvs.1 - 2026-12-10\n\n### Added\n- a\n```\n## not a heading\n```\n\n" +
	"## v1.37.2+ipvs.10\n\n- later\n\n" +
	"## v1.36.3+ipvs.1 (2026-11-01)\n- old\n" +
	"## v1.36.3+ipvs.2\n\n"

func TestEntry(t *testing.T) {
	for _, tc := range []struct{ version, want string }{
		{"v1.37.2+ipvs.2", "## v1.37.2+ipvs.2 - 2026-12-20\n\n### Fixed\n- b\n"},
		{"v1.37.2+ipvs.1", "## v1.37.2+ipvs.1 - 2026-12-10\n\n### Added\n- a\n```\n## not a heading\n```\n"},
		{"v1.37.2+ipvs.10", "## v1.37.2+ipvs.10\n\n- later\n"},
		{"v1.36.3+ipvs.1", "## v1.36.3+ipvs.1 (2026-11-01)\n- old\n"},
	} {
		got, err := Entry(sample, tc.version)
		if err != nil || got != tc.want {
			t.Errorf("Entry(%s) = %q, %v; want %q", tc.version, got, err, tc.want)
		}
	}
}

func TestEntryFailsClosed(t *testing.T) {
	for version, want := range map[string]string{
		"v1.37.3+ipvs.1": "no entry",
		"v1.37.2":        "no entry", // a prefix of an entry's version is not that entry
		"v1.36.3+ipvs.2": "empty",
	} {
		if _, err := Entry(sample, version); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Entry(%s): %v, want an error saying %q", version, err, want)
		}
	}
	if _, err := Entry(sample+"## v1.37.2+ipvs.2\n- again\n", "v1.37.2+ipvs.2"); err == nil || !strings.Contains(err.Error(), "2 entries") {
		t.Errorf("a duplicate entry: %v", err)
	}
}

// The repository's CHANGELOG.md has an entry for the Makefile's VERSION: make release needs it.
func TestRepositoryChangelogHasMakefileVersion(t *testing.T) {
	mk, err := os.ReadFile("../../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	var version string
	for _, l := range strings.Split(string(mk), "\n") {
		if v, ok := strings.CutPrefix(l, "VERSION ?= "); ok {
			version = strings.TrimSpace(v)
		}
	}
	cl, err := os.ReadFile("../../../CHANGELOG.md")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Entry(string(cl), version); err != nil {
		t.Errorf("CHANGELOG.md: %v (make release would fail)", err)
	}
}
