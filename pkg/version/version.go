// Package version holds the fork's version and the upstream Kubernetes release it tracks, and
// the rules that order the fork's versions and image tags after that release.
//
// The scheme (build/README.md, "Versions"), as k3s and RKE2 do it:
//
//	version (--version, kubernetes_build_info): v1.37.2+ipvs.N   upstream release + build metadata
//	image tag:                                   v1.37.2-ipvs.N   the same, '+' written '-' (a tag cannot hold '+')
//
// N counts the fork's releases on one upstream release, from 1. The version's semver
// precedence is the upstream release's (build metadata takes no part in semver ordering), so
// skew checks and semver ranges see v1.37.2 exactly, never an earlier pre-release as
// "v1.37.2-ipvs.0" was; Compare orders the fork's releases after it and among themselves.
package version

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	utilversion "k8s.io/apimachinery/pkg/util/version"
)

// Fork is this build's version, set at link time by the Makefile
// (-X github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/version.Fork=...). An unstamped build
// (go build, go test) says "dev" in its build metadata.
var Fork = "v1.37.2+ipvs.dev"

// Upstream is the Kubernetes release whose kube-proxy behaviour, flags and config this build tracks.
const Upstream = "v1.37.2"

var (
	versionRE = regexp.MustCompile(`^(v[0-9]+\.[0-9]+\.[0-9]+)\+ipvs\.([0-9]+|dev)$`)
	tagRE     = regexp.MustCompile(`^(v[0-9]+\.[0-9]+\.[0-9]+)-ipvs\.([0-9]+|dev)$`)
)

// Parsed is a fork version: the upstream release and the fork's release number on it (-1 for
// an unnumbered development build, 0 for the upstream release itself, as Parse reads "v1.37.2").
type Parsed struct {
	Upstream *utilversion.Version
	N        int
}

// Parse reads a fork version ("v1.37.2+ipvs.3"), a fork image tag ("v1.37.2-ipvs.3") or an
// upstream release ("v1.37.2", N = 0).
func Parse(s string) (Parsed, error) {
	m := versionRE.FindStringSubmatch(s)
	if m == nil {
		m = tagRE.FindStringSubmatch(s)
	}
	if m == nil {
		v, err := utilversion.ParseSemantic(s)
		if err != nil || !strings.HasPrefix(s, "v") || v.PreRelease() != "" || v.BuildMetadata() != "" {
			return Parsed{}, fmt.Errorf("%q is neither a kube-proxy-ipvs version (v1.37.2+ipvs.1), its image tag (v1.37.2-ipvs.1) nor an upstream release (v1.37.2)", s)
		}
		return Parsed{Upstream: v, N: 0}, nil
	}
	up, err := utilversion.ParseSemantic(m[1])
	if err != nil {
		return Parsed{}, err
	}
	n := -1
	if m[2] != "dev" {
		if n, err = strconv.Atoi(m[2]); err != nil || n < 1 {
			return Parsed{}, fmt.Errorf("%q: the fork's release number counts from 1", s)
		}
	}
	return Parsed{Upstream: up, N: n}, nil
}

// Compare orders a and b (versions, tags or upstream releases, in any mix): by the upstream
// release (semver), then by the fork's release number, upstream's own release first. A
// development build sorts after the upstream release and before the fork's first release.
func Compare(a, b string) (int, error) {
	pa, err := Parse(a)
	if err != nil {
		return 0, err
	}
	pb, err := Parse(b)
	if err != nil {
		return 0, err
	}
	switch {
	case pa.Upstream.LessThan(pb.Upstream):
		return -1, nil
	case pb.Upstream.LessThan(pa.Upstream):
		return 1, nil
	}
	rank := func(n int) int { // upstream 0, dev build 1, fork release N: N+1
		switch {
		case n == 0:
			return 0
		case n < 0:
			return 1
		}
		return n + 1
	}
	ra, rb := rank(pa.N), rank(pb.N)
	switch {
	case ra < rb:
		return -1, nil
	case ra > rb:
		return 1, nil
	}
	return 0, nil
}

// ImageTag is the image tag for version v: its '+' written '-'.
func ImageTag(v string) string { return strings.Replace(v, "+", "-", 1) }
