package ipset

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"k8s.io/klog/v2"
	utilexec "k8s.io/utils/exec"
)

const cmd = "ipset"

// MinVersion is the oldest ipset tool accepted, as upstream kube-proxy (IPv6 sets need 6.x).
const MinVersion = "6.0"

// Kernel is the Interface on the running kernel: it writes with the ipset tool (one `ipset
// restore` per batch) and reads the named sets and the entry counts over netlink (list_linux.go,
// counts_linux.go), with the tool as the fallback. It works in the network namespace of the
// calling thread.
type Kernel struct {
	exec utilexec.Interface
	// headers reads every set's entry count without the tool (nil: the tool only).
	headers func() (map[string]int, error)
	// lister reads the named sets without the tool (nil: the tool only).
	lister func(names []string) ([]Content, error)
}

var _ Interface = &Kernel{}

// NewKernel returns a Kernel that runs the ipset tool through e.
func NewKernel(e utilexec.Interface) *Kernel {
	return &Kernel{exec: e, headers: netlinkEntryCounts, lister: netlinkList}
}

func (x *Kernel) run(stdin string, args ...string) (string, error) {
	c := x.exec.Command(cmd, args...)
	var stdout, stderr bytes.Buffer
	c.SetStdin(strings.NewReader(stdin))
	c.SetStdout(&stdout)
	c.SetStderr(&stderr)
	if err := c.Run(); err != nil {
		return "", fmt.Errorf("ipset %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// List reads the named sets over netlink: a periodic verification lists the proxier's sets in
// full every few periods, and a process launch then cost more than the rest of its ipset work.
// Every set (no names), or the named ones when netlink fails or a set holds what the reader
// does not decode, come from one `ipset save`.
func (x *Kernel) List(names ...string) ([]Content, error) {
	if len(names) > 0 && x.lister != nil {
		sets, err := x.lister(names)
		if err == nil {
			return sets, nil
		}
		klog.V(2).InfoS("Listing ipsets over netlink failed; running ipset save", "err", err)
	}
	out, err := x.run("", "save")
	if err != nil {
		return nil, err
	}
	sets, err := ParseSave(out)
	if err != nil || len(names) == 0 {
		return sets, err
	}
	return onlyNamed(sets, names), nil
}

// onlyNamed keeps the named sets of all, in the order of names.
func onlyNamed(all []Content, names []string) []Content {
	byName := make(map[string]Content, len(all))
	for _, c := range all {
		byName[c.Name] = c
	}
	out := make([]Content, 0, len(names))
	for _, name := range names {
		if c, ok := byName[name]; ok {
			out = append(out, c)
		}
	}
	return out
}

// Apply runs one `ipset restore -exist`. With -exist, ipset ignores adding an existing entry,
// deleting a missing one and re-creating an identical set. Deleting a missing set is ignored
// only by ipset >= 7.7, so when the batch destroys sets, Destroy ops of sets that do not exist
// are dropped first (one `ipset list -n`). On failure ipset stops at the failing line; lines
// before it may or may not have been applied (see Fake.Apply), so re-list before retrying.
func (x *Kernel) Apply(ops []Op) error {
	ops, err := x.dropMissingDestroys(ops)
	if err != nil {
		return err
	}
	if len(ops) == 0 {
		return nil
	}
	script, err := RenderRestore(ops)
	if err != nil {
		return err
	}
	klog.V(4).InfoS("Running ipset restore", "lines", len(ops))
	_, err = x.run(script, "restore", "-exist")
	return err
}

func (x *Kernel) dropMissingDestroys(ops []Op) ([]Op, error) {
	hasDestroy := false
	for _, op := range ops {
		hasDestroy = hasDestroy || op.Kind == Destroy
	}
	if !hasDestroy {
		return ops, nil
	}
	out, err := x.run("", "list", "-n")
	if err != nil {
		return nil, err
	}
	exists := map[string]bool{}
	for _, name := range strings.Fields(out) {
		exists[name] = true
	}
	kept := make([]Op, 0, len(ops))
	for _, op := range ops {
		switch op.Kind {
		case Create:
			exists[op.Set.Name] = true
		case Destroy:
			if !exists[op.Set.Name] {
				continue
			}
			exists[op.Set.Name] = false
		}
		kept = append(kept, op)
	}
	return kept, nil
}

var versionRE = regexp.MustCompile(`v(\d+)\.(\d+)`)

// CheckVersion fails when the ipset tool is missing or older than MinVersion.
func CheckVersion(e utilexec.Interface) error {
	out, err := e.Command(cmd, "--version").CombinedOutput()
	if err != nil {
		return fmt.Errorf("running ipset --version (is ipset installed?): %w: %s", err, strings.TrimSpace(string(out)))
	}
	m := versionRE.FindStringSubmatch(string(out))
	if m == nil {
		return fmt.Errorf("no ipset version in %q", strings.TrimSpace(string(out)))
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	minMajor, minMinor := 6, 0 // MinVersion
	if major < minMajor || major == minMajor && minor < minMinor {
		return fmt.Errorf("ipset v%d.%d is older than the required %s", major, minor, MinVersion)
	}
	return nil
}
