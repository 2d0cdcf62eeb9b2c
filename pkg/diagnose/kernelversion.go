package diagnose

import (
	"fmt"
	"strconv"
	"strings"
)

// kernelVersion is the numeric start of a kernel release ("5.4.0-150-generic" -> 5.4.0).
type kernelVersion [3]int

func parseKernelRelease(rel string) (kernelVersion, bool) {
	var v kernelVersion
	num := rel
	if i := strings.IndexFunc(rel, func(r rune) bool { return r != '.' && (r < '0' || r > '9') }); i >= 0 {
		num = rel[:i]
	}
	parts := strings.Split(strings.Trim(num, "."), ".")
	if len(parts) < 2 {
		return v, false
	}
	for i := 0; i < 3 && i < len(parts); i++ {
		n, err := strconv.Atoi(parts[i])
		if err != nil {
			return v, false
		}
		v[i] = n
	}
	return v, true
}

func (v kernelVersion) less(o kernelVersion) bool {
	for i := range v {
		if v[i] != o[i] {
			return v[i] < o[i]
		}
	}
	return false
}

func (v kernelVersion) String() string { return fmt.Sprintf("%d.%d.%d", v[0], v[1], v[2]) }

// udpCsumFixes are the first releases of each stable series with the netfilter fix for the
// VXLAN UDP checksum bug (torvalds/linux ea64d8d6c675, "netfilter: nat: never update the UDP
// checksum when it's 0", mainline 5.7); the stable backports as listed in
// kubernetes/kubernetes#88986. Series not listed and older than 5.7 never got it.
var udpCsumFixes = map[[2]int]int{
	{4, 14}: 181,
	{4, 19}: 123,
	{5, 4}:  41,
	{5, 6}:  13,
}

// udpCsumBug says whether the kernel release lacks the fix, and why it says so. Distribution
// kernels backport fixes under their own numbering (RHEL 7's 3.10), so "affected" means "the
// version does not show the fix", not proof.
func udpCsumBug(release string) (affected, known bool, why string) {
	v, ok := parseKernelRelease(release)
	if !ok {
		return false, false, fmt.Sprintf("kernel release %q not understood", release)
	}
	if !v.less(kernelVersion{5, 7, 0}) {
		return false, true, fmt.Sprintf("kernel %s has the fix (mainline 5.7)", release)
	}
	if fix, ok := udpCsumFixes[[2]int{v[0], v[1]}]; ok {
		if v[2] >= fix {
			return false, true, fmt.Sprintf("kernel %s has the stable backport (%d.%d.%d)", release, v[0], v[1], fix)
		}
		return true, true, fmt.Sprintf("kernel %s predates the stable backport (%d.%d.%d)", release, v[0], v[1], fix)
	}
	return true, true, fmt.Sprintf("kernel %s predates the fix (mainline 5.7; no backport to %d.%d)", release, v[0], v[1])
}
