package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tree makes a small root filesystem: a directory, files (one executable), a symlink, a hard link.
func tree(t *testing.T, dir string) {
	t.Helper()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "usr/sbin"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "usr/sbin/xtables-nft-multi"), []byte("ELF"), 0o755))
	must(os.Symlink("xtables-nft-multi", filepath.Join(dir, "usr/sbin/iptables-nft")))
	must(os.WriteFile(filepath.Join(dir, "etc-file"), []byte("x"), 0o644))
	must(os.Link(filepath.Join(dir, "etc-file"), filepath.Join(dir, "etc-file-link")))
	must(os.Chtimes(filepath.Join(dir, "etc-file"), time.Now(), time.Now()))
}

func spec(dirs ...string) Spec {
	var layers []LayerSpec
	for _, d := range dirs {
		layers = append(layers, LayerSpec{Dir: d, MTime: time.Unix(1600000000, 0)})
	}
	return Spec{
		Repo: "example.test/kube-proxy", Tag: "v1.37.2-ipvs.1", Created: time.Unix(1700000000, 0).UTC(),
		Labels:     map[string]string{"org.opencontainers.image.version": "v1.37.2+ipvs.1"},
		Entrypoint: []string{"/usr/local/bin/kube-proxy"},
		Platforms: []Platform{
			{OS: "linux", Arch: "amd64", Layers: layers},
			{OS: "linux", Arch: "arm64", Layers: layers},
		},
	}
}

func TestBuildIsReproducible(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	tree(t, a)
	tree(t, b) // same content, other inodes and mtimes
	out := t.TempDir()
	ra, err := Build(spec(a), filepath.Join(out, "a"))
	if err != nil {
		t.Fatal(err)
	}
	rb, err := Build(spec(b), filepath.Join(out, "b"))
	if err != nil {
		t.Fatal(err)
	}
	if ra.Index.Digest != rb.Index.Digest {
		t.Errorf("index digests differ: %s, %s", ra.Index.Digest, rb.Index.Digest)
	}
	for _, f := range []string{"index.json", "oci-layout"} {
		x, _ := os.ReadFile(filepath.Join(out, "a", f))
		y, _ := os.ReadFile(filepath.Join(out, "b", f))
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs", f)
		}
	}
}

func TestLayerTarIsNormalized(t *testing.T) {
	dir := t.TempDir()
	tree(t, dir)
	mtime := time.Unix(1700000000, 0)
	data, err := layerTar(dir, mtime)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(bytes.NewReader(data))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: owner %d:%d %q:%q, want 0:0", h.Name, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		if !h.ModTime.Equal(mtime) {
			t.Errorf("%s: mtime %v, want %v", h.Name, h.ModTime, mtime)
		}
		switch h.Name {
		case "etc-file-link":
			if h.Typeflag != tar.TypeLink || h.Linkname != "etc-file" {
				t.Errorf("%s: type %c -> %q, want a hard link to etc-file", h.Name, h.Typeflag, h.Linkname)
			}
		case "usr/sbin/iptables-nft":
			if h.Typeflag != tar.TypeSymlink || h.Linkname != "xtables-nft-multi" {
				t.Errorf("%s: type %c -> %q, want a symlink", h.Name, h.Typeflag, h.Linkname)
			}
		case "usr/sbin/xtables-nft-multi":
			if h.Mode != 0o755 {
				t.Errorf("%s: mode %o, want 755", h.Name, h.Mode)
			}
		}
	}
	want := "etc-file etc-file-link usr/ usr/sbin/ usr/sbin/iptables-nft usr/sbin/xtables-nft-multi"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("entries %q, want %q", got, want)
	}
}

func TestDockerArchive(t *testing.T) {
	dir, out := t.TempDir(), t.TempDir()
	tree(t, dir)
	s := spec(dir)
	res, err := Build(s, filepath.Join(out, "oci"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(out, "a.tar")
	if err := WriteDockerArchive(path, s, res.Images[0]); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name], _ = io.ReadAll(tr)
	}
	var m []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(files["manifest.json"], &m); err != nil || len(m) != 1 {
		t.Fatalf("manifest.json: %v %s", err, files["manifest.json"])
	}
	if len(m[0].RepoTags) != 1 || m[0].RepoTags[0] != "example.test/kube-proxy:v1.37.2-ipvs.1" {
		t.Errorf("RepoTags %v", m[0].RepoTags)
	}
	cfg := files[m[0].Config]
	if digest(cfg) != "sha256:"+strings.TrimSuffix(m[0].Config, ".json") {
		t.Errorf("config %s: digest %s does not match its name", m[0].Config, digest(cfg))
	}
	var c struct {
		Architecture string
		RootFS       struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(cfg, &c); err != nil {
		t.Fatal(err)
	}
	if c.Architecture != "amd64" || len(c.RootFS.DiffIDs) != len(m[0].Layers) {
		t.Fatalf("config %s", cfg)
	}
	for i, l := range m[0].Layers {
		if digest(files[l]) != c.RootFS.DiffIDs[i] {
			t.Errorf("layer %s: digest %s, config says %s", l, digest(files[l]), c.RootFS.DiffIDs[i])
		}
	}
}
