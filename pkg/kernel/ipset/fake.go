package ipset

import (
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/fakecalls"
)

// Fake is an in-memory Interface that behaves as `ipset restore -exist` on ipset 7.17 was seen
// to behave. Entries are stored in save spelling (see Canonical), so List returns what ipset save
// would. Apply runs the ops in order:
//   - Create of an existing set succeeds if AsListed type, family and range match, else fails.
//   - Add/Del of an existing/missing entry succeed; Add/Del on a missing set or with an entry the
//     set cannot hold fail.
//   - Flush of a missing set fails; Destroy of a missing set succeeds; Destroy of a set marked
//     referenced (SetReferenced, standing for an iptables rule using it) fails.
//
// On failure the batch stops at the failing op, like ipset restore does at the failing line, and
// not everything before it is applied: ipset sends consecutive Add (or Del) lines of one set as
// one message, and an error found while parsing a line drops the group still pending. So the ops
// before the failing one are applied, except a run of Adds or Dels to one set that the failing
// Add/Del directly follows (an error of a Create, Flush or Destroy keeps everything before it).
//
// List and EntryCounts are the reads and Apply the write. The embedded Recorder counts calls and injects errors;
// an injected error changes nothing.
type Fake struct {
	*fakecalls.Recorder

	mu   sync.Mutex
	sets map[string]*fakeSet
}

type fakeSet struct {
	set        Set // AsListed
	entries    map[string]bool
	referenced bool
}

var _ Interface = &Fake{}

// NewFake returns a Fake without sets.
func NewFake() *Fake {
	return &Fake{Recorder: fakecalls.New([]string{"List", "EntryCounts"}, []string{"Apply"}), sets: map[string]*fakeSet{}}
}

func (f *Fake) List(names ...string) ([]Content, error) {
	if err := f.Call("List"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(names) == 0 {
		names = slices.Sorted(maps.Keys(f.sets))
	}
	out := make([]Content, 0, len(names))
	for _, name := range names {
		if s, ok := f.sets[name]; ok {
			out = append(out, Content{Set: s.set, Entries: slices.Sorted(maps.Keys(s.entries))})
		}
	}
	return out, nil
}

func (f *Fake) EntryCounts() (map[string]int, error) {
	if err := f.Call("EntryCounts"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int, len(f.sets))
	for name, s := range f.sets {
		out[name] = len(s.entries)
	}
	return out, nil
}

// pendingGroup is the run of Add or Del lines to one set that ipset has not sent yet.
type pendingGroup struct {
	kind    OpKind
	set     *fakeSet
	entries []string
}

func (g *pendingGroup) commit() {
	for _, e := range g.entries {
		if g.kind == Add {
			g.set.entries[e] = true
		} else {
			delete(g.set.entries, e)
		}
	}
	*g = pendingGroup{}
}

func (f *Fake) Apply(ops []Op) error {
	if err := f.Call("Apply"); err != nil {
		return err
	}
	// Like Kernel, refuse a batch that cannot be rendered before touching anything.
	if _, err := RenderRestore(ops); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var g pendingGroup
	for i, op := range ops {
		fail := func(format string, args ...any) error {
			return fmt.Errorf("ipset restore: Error in line %d: %s", i+1, fmt.Sprintf(format, args...))
		}
		s := f.sets[op.Set.Name]
		switch op.Kind {
		case Add, Del:
			if s == nil {
				return fail("The set with the given name does not exist")
			}
			e, err := Canonical(s.set, op.Entry)
			if err != nil {
				return fail("%v", err)
			}
			if g.set != s || g.kind != op.Kind {
				g.commit()
				g.kind, g.set = op.Kind, s
			}
			g.entries = append(g.entries, e)
			continue
		}
		g.commit()
		switch op.Kind {
		case Create:
			want := AsListed(op.Set)
			if s == nil {
				f.sets[want.Name] = &fakeSet{set: want, entries: map[string]bool{}}
			} else if s.set != want {
				return fail("Set cannot be created: set with the same name already exists")
			}
		case Flush:
			if s == nil {
				return fail("The set with the given name does not exist")
			}
			clear(s.entries)
		case Destroy:
			if s != nil && s.referenced {
				return fail("Set cannot be destroyed: it is in use by a kernel component")
			}
			delete(f.sets, op.Set.Name)
		}
	}
	g.commit()
	return nil
}

// Test helpers: they neither count nor consume injected errors.

// AddSet creates a set with entries directly, e.g. one left by a previous kube-proxy. Entries
// are canonicalized; an entry the set cannot hold is an error.
func (f *Fake) AddSet(s Set, entries ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fs := &fakeSet{set: AsListed(s), entries: map[string]bool{}}
	for _, e := range entries {
		c, err := Canonical(fs.set, e)
		if err != nil {
			return err
		}
		fs.entries[c] = true
	}
	f.sets[s.Name] = fs
	return nil
}

// SetReferenced marks a set as used by a kernel component (an iptables rule), so that
// destroying it fails as it does in the kernel.
func (f *Fake) SetReferenced(name string, referenced bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.sets[name]; ok {
		s.referenced = referenced
	}
}

// Sets returns the sets, sorted by name.
func (f *Fake) Sets() []Set {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Set, 0, len(f.sets))
	for _, name := range slices.Sorted(maps.Keys(f.sets)) {
		out = append(out, f.sets[name].set)
	}
	return out
}

// Entries returns the entries of a set in save spelling, sorted; nil if the set is missing.
func (f *Fake) Entries(set string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sets[set]
	if !ok {
		return nil
	}
	return slices.Sorted(maps.Keys(s.entries))
}
