package version

import (
	"os"
	"regexp"
	"sort"
	"testing"

	utilversion "k8s.io/apimachinery/pkg/util/version"
)

// The versions in their intended order: each sorts after the one before.
var ordered = []string{
	"v1.37.1",
	"v1.37.1+ipvs.2",
	"v1.37.2",
	"v1.37.2+ipvs.dev",
	"v1.37.2+ipvs.1",
	"v1.37.2-ipvs.2", // an image tag compares as its version
	"v1.37.2+ipvs.10",
	"v1.37.3",
	"v1.38.0",
}

func TestCompareOrdersForkAfterUpstream(t *testing.T) {
	for i := range ordered {
		for j := range ordered {
			got, err := Compare(ordered[i], ordered[j])
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			switch {
			case i < j:
				want = -1
			case i > j:
				want = 1
			}
			if got != want {
				t.Errorf("Compare(%s, %s) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
}

// Semver tools (k8s.io/apimachinery's util/version, used by Kubernetes' own skew checks) must
// see the fork's version as the upstream release it tracks: never before it, before the next one.
func TestSemverSeesUpstreamRelease(t *testing.T) {
	up := utilversion.MustParseSemantic(Upstream)
	next := utilversion.MajorMinor(up.Major(), up.Minor()).WithPatch(up.Patch() + 1)
	for _, s := range []string{Upstream + "+ipvs.1", Upstream + "+ipvs.10", Fork} {
		v, err := utilversion.ParseSemantic(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if v.LessThan(up) || !v.AtLeast(up) {
			t.Errorf("%s sorts before %s in semver", s, Upstream)
		}
		if !v.LessThan(next) {
			t.Errorf("%s does not sort before %s in semver", s, next)
		}
		if v.Major() != up.Major() || v.Minor() != up.Minor() || v.Patch() != up.Patch() {
			t.Errorf("%s: semver core %d.%d.%d, want %s", s, v.Major(), v.Minor(), v.Patch(), Upstream)
		}
	}
	// Why the scheme changed: the old form is a pre-release of the upstream release.
	old := utilversion.MustParseSemantic(Upstream + "-ipvs.0")
	if !old.LessThan(up) {
		t.Errorf("%s-ipvs.0 was expected to sort before %s in semver", Upstream, Upstream)
	}
}

// Image tags sort after the upstream tag as plain strings and as `sort -V` does, for N < 10;
// Compare (or a natural sort) is needed from ipvs.10 on, as for any dotted number.
func TestImageTagsSortAfterUpstreamTag(t *testing.T) {
	tags := []string{ImageTag("v1.37.2+ipvs.2"), "v1.37.2", ImageTag("v1.37.2+ipvs.1"), "v1.37.3"}
	sort.Strings(tags)
	want := []string{"v1.37.2", "v1.37.2-ipvs.1", "v1.37.2-ipvs.2", "v1.37.3"}
	for i := range want {
		if tags[i] != want[i] {
			t.Fatalf("sorted tags %v, want %v", tags, want)
		}
	}
	validTag := regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`) // the OCI distribution spec's tag
	for _, tag := range want {
		if !validTag.MatchString(tag) {
			t.Errorf("%q is not a valid image tag", tag)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for _, s := range []string{"", "1.37.2", "v1.37.2-ipvs.0", "v1.37.2+ipvs.0", "v1.37.2+ipvs", "v1.37.2-rc.1", "v1.37.2+k3s1", "v1.37.2+ipvs.1.2"} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) succeeded", s)
		}
	}
}

// The Makefile's VERSION is a fork version on the upstream release this code tracks.
func TestMakefileVersionTracksUpstream(t *testing.T) {
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^VERSION \?= (\S+)$`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("no `VERSION ?= ...` line in the Makefile")
	}
	p, err := Parse(string(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	if p.N < 1 {
		t.Errorf("Makefile VERSION %s: want a fork release (+ipvs.N, N >= 1)", m[1])
	}
	if p.Upstream.String() != Upstream[1:] {
		t.Errorf("Makefile VERSION %s tracks %s, pkg/version.Upstream is %s", m[1], p.Upstream, Upstream)
	}
}
