package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

type entry struct {
	name, link string
	typ        byte
	mode       int64
	body       string
}

func layer(t *testing.T, es []entry) []byte {
	t.Helper()
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	for _, e := range es {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Size: int64(len(e.body))}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// writeLayout writes an OCI layout: index.json -> image index -> an arm64 and an amd64 manifest;
// the amd64 one has the layers given.
func writeLayout(t *testing.T, dir string, layers ...[]byte) {
	t.Helper()
	put := func(media string, data []byte) map[string]any {
		sum := fmt.Sprintf("%x", sha256.Sum256(data))
		if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "blobs", "sha256", sum), data, 0o644); err != nil {
			t.Fatal(err)
		}
		return map[string]any{"mediaType": media, "digest": "sha256:" + sum, "size": len(data)}
	}
	js := func(v any) []byte { b, _ := json.Marshal(v); return b }
	cfg := put("application/vnd.oci.image.config.v1+json", js(map[string]any{
		"config": map[string]any{"Env": []string{"PATH=/usr/sbin"}, "Entrypoint": []string{"/go-runner"}}}))
	var ls []map[string]any
	for _, l := range layers {
		ls = append(ls, put(mediaOCILayerGz, l))
	}
	other := put(mediaOCIManifest, js(map[string]any{"config": cfg, "layers": []any{}}))
	other["platform"] = map[string]string{"architecture": "arm64", "os": "linux"}
	amd := put(mediaOCIManifest, js(map[string]any{"config": cfg, "layers": ls}))
	amd["platform"] = map[string]string{"architecture": "amd64", "os": "linux"}
	idx := put(mediaOCIIndex, js(map[string]any{"manifests": []any{other, amd}}))
	if err := os.WriteFile(filepath.Join(dir, "index.json"), js(map[string]any{"manifests": []any{idx}}), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestUnpack(t *testing.T) {
	layout := t.TempDir()
	writeLayout(t, layout,
		layer(t, []entry{
			{name: "usr/", typ: tar.TypeDir, mode: 0o755},
			{name: "usr/lib/", typ: tar.TypeDir, mode: 0o755},
			{name: "lib", typ: tar.TypeSymlink, link: "usr/lib"},
			{name: "usr/lib/gone", typ: tar.TypeReg, mode: 0o644, body: "x"},
			{name: "usr/lib/a", typ: tar.TypeReg, mode: 0o755, body: "a1"},
			{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		}),
		layer(t, []entry{
			{name: "usr/lib/a", typ: tar.TypeReg, mode: 0o755, body: "a2"},
			{name: "usr/lib/.wh.gone", typ: tar.TypeReg},
			{name: "lib/b", typ: tar.TypeLink, link: "usr/lib/a"}, // through the /lib link
		}))
	dest := filepath.Join(t.TempDir(), "rootfs")
	u, err := Unpack(layout, "linux", "amd64", dest)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "lib/a")); err != nil || string(b) != "a2" {
		t.Errorf("lib/a: %q %v, want the upper layer's a2", b, err)
	}
	if _, err := os.Lstat(filepath.Join(dest, "usr/lib/gone")); !os.IsNotExist(err) {
		t.Errorf("usr/lib/gone: whiteout not applied (%v)", err)
	}
	if _, err := os.Lstat(filepath.Join(dest, "usr/lib/.wh.gone")); !os.IsNotExist(err) {
		t.Errorf("the whiteout file itself was written")
	}
	if b, err := os.ReadFile(filepath.Join(dest, "usr/lib/b")); err != nil || string(b) != "a2" {
		t.Errorf("usr/lib/b (hard link to a, written through the /lib symlink): %q %v", b, err)
	}
	if st, err := os.Stat(filepath.Join(dest, "tmp")); err != nil || st.Mode()&os.ModeSticky == 0 || st.Mode().Perm() != 0o777 {
		t.Errorf("tmp: %v %v, want sticky 0777", st.Mode(), err)
	}
	got, err := Load(dest)
	if err != nil {
		t.Fatal(err)
	}
	if got.Manifest != u.Manifest || got.Rootfs != dest || len(got.Config.Env) != 1 || got.Config.Env[0] != "PATH=/usr/sbin" {
		t.Errorf("Load: %+v, want %+v", got, u)
	}
	if _, err := Unpack(layout, "linux", "s390x", filepath.Join(t.TempDir(), "x")); err == nil {
		t.Error("an architecture the layout does not have: no error")
	}
}

func TestUnpackRefusesEscapes(t *testing.T) {
	for _, es := range [][]entry{
		{{name: "../evil", typ: tar.TypeReg, mode: 0o644}},
		{{name: "up", typ: tar.TypeSymlink, link: "../../.."}, {name: "up/evil", typ: tar.TypeReg, mode: 0o644}},
	} {
		layout := t.TempDir()
		writeLayout(t, layout, layer(t, es))
		root := filepath.Join(t.TempDir(), "rootfs")
		_, err := Unpack(layout, "linux", "amd64", root)
		if _, serr := os.Stat(filepath.Join(filepath.Dir(root), "evil")); serr == nil {
			t.Errorf("%v: wrote outside the root", es)
		}
		if es[0].name == "up" && err == nil {
			t.Errorf("%v: no error for a path through a link out of the root", es)
		}
	}
}
