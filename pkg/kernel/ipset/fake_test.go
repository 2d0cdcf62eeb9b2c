package ipset

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

var (
	setA = Set{Name: "A", Type: HashIPPort, Family: "inet"}
	setB = Set{Name: "B", Type: HashIP, Family: "inet6"}
	setP = Set{Name: "P", Type: BitmapPort}
)

func add(s Set, e string) Op { return Op{Kind: Add, Set: Set{Name: s.Name}, Entry: e} }
func del(s Set, e string) Op { return Op{Kind: Del, Set: Set{Name: s.Name}, Entry: e} }
func create(s Set) Op        { return Op{Kind: Create, Set: s} }
func flush(s Set) Op         { return Op{Kind: Flush, Set: Set{Name: s.Name}} }
func destroy(s Set) Op       { return Op{Kind: Destroy, Set: Set{Name: s.Name}} }

var missing = Set{Name: "NOPE", Type: HashIP}

// applyScenarios are batches applied in order to one namespace, each with whether it must fail.
// They run against the Fake here and against the real ipset in TestExecMatchesFake.
var applyScenarios = []struct {
	name    string
	ops     []Op
	wantErr bool
}{
	{"create sets", []Op{create(setA), create(setB), create(setP), create(setA)}, false},
	{"add entries in other spellings", []Op{add(setA, "10.0.0.1,80"), add(setA, "10.0.0.1,UDP:53"), add(setB, "2001:DB8::1"), add(setP, "tcp:30080")}, false},
	{"re-add and delete missing", []Op{add(setA, "10.0.0.1,tcp:80"), del(setA, "10.9.9.9,tcp:1"), del(setP, "31000")}, false},
	{"recreate with other type", []Op{create(Set{Name: "A", Type: HashIP, Family: "inet"})}, true},
	{"destroy missing", []Op{destroy(missing)}, false},
	{"flush missing", []Op{add(setA, "10.0.0.2,tcp:2"), flush(missing)}, true},
	{"pending run dropped on missing set", []Op{add(setA, "10.0.0.3,tcp:3"), add(setB, "2001:db8::3"), add(missing, "1.2.3.4")}, true},
	{"pending run dropped on bad entry", []Op{del(setA, "10.0.0.1,tcp:80"), add(setA, "10.0.0.4,tcp:4"), add(setA, "bogus")}, true},
	{"bitmap range", []Op{add(setP, "70000")}, true},
	{"flush and destroy", []Op{flush(setA), destroy(setP)}, false},
}

// wantAfterScenarios is the state after all applyScenarios.
var wantAfterScenarios = []Content{
	{setA, []string{"10.0.0.1,udp:53", "10.0.0.2,tcp:2", "10.0.0.3,tcp:3"}}, // A is flushed below
	{setB, []string{"2001:db8::1"}},
}

func TestFakeApplyScenarios(t *testing.T) {
	f := NewFake()
	for _, sc := range applyScenarios {
		err := f.Apply(sc.ops)
		if (err != nil) != sc.wantErr {
			t.Fatalf("%s: error %v, want error %v", sc.name, err, sc.wantErr)
		}
		if sc.name == "bitmap range" {
			// Before the final flush, check what partial failures left behind.
			if got := f.Entries("A"); !slices.Equal(got, wantAfterScenarios[0].Entries) {
				t.Errorf("A before flush = %v, want %v", got, wantAfterScenarios[0].Entries)
			}
		}
	}
	got, err := f.List()
	if err != nil {
		t.Fatal(err)
	}
	want := []Content{{setA, []string{}}, wantAfterScenarios[1]}
	if len(got) != 2 || got[0].Set != want[0].Set || len(got[0].Entries) != 0 || got[1].Set != want[1].Set || !slices.Equal(got[1].Entries, want[1].Entries) {
		t.Errorf("List = %+v, want %+v", got, want)
	}
	if r, w := f.Reads(), f.Writes(); r != 1 || w != len(applyScenarios) {
		t.Errorf("reads, writes = %d, %d", r, w)
	}
}

func TestFakeReferencedAndInjected(t *testing.T) {
	f := NewFake()
	if err := f.AddSet(Set{Name: "KUBE-CLUSTER-IP", Type: HashIPPort}, "10.96.0.1,443"); err != nil {
		t.Fatal(err)
	}
	if got := f.Entries("KUBE-CLUSTER-IP"); !slices.Equal(got, []string{"10.96.0.1,tcp:443"}) {
		t.Errorf("seeded entries %v", got)
	}
	f.SetReferenced("KUBE-CLUSTER-IP", true)
	if err := f.Apply([]Op{{Kind: Destroy, Set: Set{Name: "KUBE-CLUSTER-IP"}}}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("destroying a referenced set: %v", err)
	}
	boom := errors.New("boom")
	f.InjectError("Apply", boom)
	f.SetReferenced("KUBE-CLUSTER-IP", false)
	if err := f.Apply([]Op{{Kind: Destroy, Set: Set{Name: "KUBE-CLUSTER-IP"}}}); err != boom {
		t.Fatalf("Apply = %v, want injected", err)
	}
	if len(f.Sets()) != 1 {
		t.Error("injected failure changed state")
	}
	if f.Count("Apply") != 2 {
		t.Errorf("Apply count %d", f.Count("Apply"))
	}
}
