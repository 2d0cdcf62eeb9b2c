// Command apisurface prints the exported API of the Go package in each directory given, one
// sorted line per exported function, method, type, struct field, interface method, constant and
// variable, so that two releases of a package can be compared with diff (hack/bump-upstream.sh
// does that for the upstream proxy packages the product imports). It reads the source only
// (go/parser, no type checking, no build context): every non-test file counts, whatever its
// build constraints, which is what an importer on any platform may see.
package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: apisurface DIR...")
		os.Exit(2)
	}
	for _, dir := range os.Args[1:] {
		lines, err := Surface(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for _, l := range lines {
			fmt.Println(l)
		}
	}
}

// Surface returns the sorted, de-duplicated exported declarations of the package in dir.
func Surface(dir string) ([]string, error) {
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		for _, l := range fileDecls(fset, f) {
			seen[l] = true
		}
	}
	out := make([]string, 0, len(seen))
	for l := range seen {
		out = append(out, l)
	}
	sort.Strings(out)
	return out, nil
}

func fileDecls(fset *token.FileSet, f *ast.File) []string {
	var out []string
	src := func(n ast.Node) string {
		var b bytes.Buffer
		_ = printer.Fprint(&b, fset, n)
		return strings.Join(strings.Fields(b.String()), " ")
	}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if !d.Name.IsExported() {
				continue
			}
			recv := ""
			if d.Recv != nil && len(d.Recv.List) == 1 {
				r := src(d.Recv.List[0].Type)
				if !ast.IsExported(strings.TrimLeft(strings.SplitN(r, "[", 2)[0], "*")) {
					continue
				}
				recv = "(" + r + ") "
			}
			out = append(out, "func "+recv+d.Name.Name+strings.TrimPrefix(src(d.Type), "func"))
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					if !s.Name.IsExported() {
						continue
					}
					out = append(out, typeLines(s, src)...)
				case *ast.ValueSpec:
					for _, n := range s.Names {
						if !n.IsExported() {
							continue
						}
						l := d.Tok.String() + " " + n.Name
						if s.Type != nil {
							l += " " + src(s.Type)
						}
						out = append(out, l)
					}
				}
			}
		}
	}
	return out
}

func typeLines(s *ast.TypeSpec, src func(ast.Node) string) []string {
	name := s.Name.Name
	switch t := s.Type.(type) {
	case *ast.StructType:
		out := []string{"type " + name + " struct"}
		for _, fld := range t.Fields.List {
			if len(fld.Names) == 0 { // embedded
				out = append(out, "field "+name+" embeds "+src(fld.Type))
				continue
			}
			for _, n := range fld.Names {
				if n.IsExported() {
					out = append(out, "field "+name+"."+n.Name+" "+src(fld.Type))
				}
			}
		}
		return out
	case *ast.InterfaceType:
		out := []string{"type " + name + " interface"}
		for _, m := range t.Methods.List {
			if len(m.Names) == 0 {
				out = append(out, "method "+name+" embeds "+src(m.Type))
				continue
			}
			for _, n := range m.Names {
				if n.IsExported() {
					out = append(out, "method "+name+"."+n.Name+strings.TrimPrefix(src(m.Type), "func"))
				}
			}
		}
		return out
	}
	assign := " "
	if s.Assign.IsValid() {
		assign = " = "
	}
	return []string{"type " + name + assign + src(s.Type)}
}
