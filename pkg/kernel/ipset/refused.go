package ipset

import (
	"regexp"
	"strconv"
)

// refusedLineRE is how `ipset restore` names the line the kernel refused; the lines before it
// went in, the ones after did not.
var refusedLineRE = regexp.MustCompile(`Error in line (\d+):`)

// RefusedLine reports whether err says that `ipset restore` stopped at a line the kernel (or
// ipset's parser) refused, and which (1-based). Other failures (no ipset tool, a killed
// process, a batch that could not be rendered) are not about one line.
func RefusedLine(err error) (int, bool) {
	if err == nil {
		return 0, false
	}
	m := refusedLineRE.FindStringSubmatch(err.Error())
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}
