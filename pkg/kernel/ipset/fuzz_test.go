package ipset

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// Seeds: testdata/fuzz/<FuzzName>/, from the outputs and entries of the tests above and the
// ipset tool's spellings. `go test` runs them; `make fuzz` fuzzes.

// renderSave spells contents as `ipset save` does, as far as ParseSave reads it.
func renderSave(sets []Content) string {
	var b strings.Builder
	for _, s := range sets {
		fmt.Fprintf(&b, "create %s %s", s.Name, s.Type)
		if s.Family != "" {
			fmt.Fprintf(&b, " family %s", s.Family)
		}
		if s.Range != "" {
			fmt.Fprintf(&b, " range %s", s.Range)
		}
		b.WriteByte('\n')
		for _, e := range s.Entries {
			fmt.Fprintf(&b, "add %s %s\n", s.Name, e)
		}
	}
	return b.String()
}

// FuzzParseSave: what ParseSave accepts has named, distinct sets and entries that are single
// words, and reads back the same once spelled again.
func FuzzParseSave(f *testing.F) {
	f.Fuzz(func(t *testing.T, out string) {
		sets, err := ParseSave(out)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, s := range sets {
			if s.Name == "" || seen[s.Name] || len(strings.Fields(s.Name)) != 1 {
				t.Fatalf("set name %q (seen %v)", s.Name, seen[s.Name])
			}
			seen[s.Name] = true
			for _, e := range s.Entries {
				if len(strings.Fields(e)) != 1 || strings.Fields(e)[0] != e {
					t.Fatalf("entry %q of %s is not one word", e, s.Name)
				}
			}
		}
		again, err := ParseSave(renderSave(sets))
		if err != nil || !reflect.DeepEqual(again, sets) {
			t.Fatalf("read back as %+v, %v; want %+v", again, err, sets)
		}
	})
}

// FuzzParseTerse: counts are of named sets and never negative.
func FuzzParseTerse(f *testing.F) {
	f.Fuzz(func(t *testing.T, out string) {
		counts, err := ParseTerse(out)
		if err != nil {
			return
		}
		for name, n := range counts {
			if name == "" || n < 0 {
				t.Fatalf("count %d for set %q", n, name)
			}
		}
	})
}

var fuzzTypes = []string{HashIP, HashIPPort, HashIPPortIP, HashIPPortNet, HashNet, BitmapPort, "list:set"}

// FuzzCanonical: an entry Canonical accepts comes out as a word RenderRestore writes, and in
// its canonical spelling (Canonical of it is itself).
func FuzzCanonical(f *testing.F) {
	f.Fuzz(func(t *testing.T, typ uint8, family, portRange, entry string) {
		s := Set{Name: "S", Type: fuzzTypes[int(typ)%len(fuzzTypes)], Family: family, Range: portRange}
		out, err := Canonical(s, entry)
		if err != nil {
			return
		}
		if err := checkWord("entry", out); err != nil {
			t.Fatalf("Canonical(%+v, %q) = %q: %v", s, entry, out, err)
		}
		if again, err := Canonical(s, out); err != nil || again != out {
			t.Fatalf("Canonical(%+v, %q) = %q, but Canonical of that = %q, %v", s, entry, out, again, err)
		}
	})
}

// asciiFields splits a line as the ipset tool's restore does: on ASCII white space.
func asciiFields(line string) []string {
	return strings.FieldsFunc(line, func(r rune) bool { return strings.ContainsRune(" \t\n\v\f\r", r) })
}

// FuzzRenderRestore: a batch RenderRestore accepts is one line per op, each splitting (as the
// ipset tool and as ParseSave split) into the op's own words, none holding a control byte.
func FuzzRenderRestore(f *testing.F) {
	f.Fuzz(func(t *testing.T, kind1 uint8, name1, typ1, entry1 string, kind2 uint8, name2, family2, range2, entry2 string) {
		ops := []Op{
			{Kind: OpKind(kind1 % 6), Set: Set{Name: name1, Type: typ1, Family: FamilyInet}, Entry: entry1},
			{Kind: OpKind(kind2 % 6), Set: Set{Name: name2, Type: BitmapPort, Family: family2, Range: range2}, Entry: entry2},
		}
		script, err := RenderRestore(ops)
		if err != nil {
			return
		}
		if !strings.HasSuffix(script, "\n") {
			t.Fatalf("script %q does not end its last line", script)
		}
		lines := strings.Split(strings.TrimSuffix(script, "\n"), "\n")
		if len(lines) != len(ops) {
			t.Fatalf("%d lines for %d ops: %q", len(lines), len(ops), script)
		}
		verbs := map[OpKind]string{Create: "create", Add: "add", Del: "del", Flush: "flush", Destroy: "destroy"}
		for i, op := range ops {
			want := []string{verbs[op.Kind], op.Set.Name}
			if op.Kind == Add || op.Kind == Del {
				want = append(want, op.Entry)
			}
			words := asciiFields(lines[i])
			if op.Kind == Create && len(words) > 2 {
				words = words[:2]
			}
			if !reflect.DeepEqual(words, want) || !reflect.DeepEqual(strings.Fields(lines[i])[:len(words)], words) {
				t.Fatalf("line %q splits into %q, want %q", lines[i], words, want)
			}
			for _, w := range asciiFields(lines[i]) {
				if strings.ContainsFunc(w, func(r rune) bool { return r < ' ' || r == 0x7f }) {
					t.Fatalf("word %q of line %q holds a control byte", w, lines[i])
				}
			}
		}
	})
}
