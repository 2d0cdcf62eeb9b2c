package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestSurface(t *testing.T) {
	dir := t.TempDir()
	src := `package p

// A is exported.
type A struct {
	X, y int
	B
}
type B interface{ M(int) error; m() }
type c struct{ Z int }
type D = map[string]int
const E, f = 1, 2
var G string
func H(a int) (string, error) { return "", nil }
func (a *A) N() {}
func (x c) O() {}
func i() {}
`
	if err := os.WriteFile(filepath.Join(dir, "p.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "p_test.go"), []byte("package p\nfunc Test() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Surface(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"const E",
		"field A embeds B",
		"field A.X int",
		"func (*A) N()",
		"func H(a int) (string, error)",
		"method B.M(int) error",
		"type A struct",
		"type B interface",
		"type D = map[string]int",
		"var G string",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}
