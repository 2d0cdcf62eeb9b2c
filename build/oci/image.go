package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

const (
	mediaIndex    = "application/vnd.oci.image.index.v1+json"
	mediaManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaConfig   = "application/vnd.oci.image.config.v1+json"
	mediaLayerGz  = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// Spec is what to build.
type Spec struct {
	Repo, Tag  string
	Created    time.Time
	Labels     map[string]string // image config labels, also manifest and index annotations
	Entrypoint []string
	Platforms  []Platform
}

// Platform is one architecture's image: its layers, bottom first.
type Platform struct {
	OS, Arch string
	Layers   []LayerSpec
}

// LayerSpec is one layer: a directory tree, and the mtime all its entries get.
type LayerSpec struct {
	Dir   string
	MTime time.Time
}

// Descriptor is an OCI content descriptor.
type Descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Platform    *OCIPlatform      `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// OCIPlatform is a descriptor's platform.
type OCIPlatform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Variant      string `json:"variant,omitempty"`
}

// Layer is one built layer: the uncompressed tar (for the docker archive) and its gzip.
type Layer struct {
	Tar    []byte
	DiffID string // sha256 of Tar
	Gz     Descriptor
}

// Image is one architecture's built image.
type Image struct {
	Platform Platform
	Layers   []Layer
	Config   []byte
	ConfigD  Descriptor
	Manifest Descriptor
}

func (im Image) layerSummary() string {
	var s []string
	for _, l := range im.Layers {
		s = append(s, fmt.Sprintf("%d bytes gzip (%d tar)", l.Gz.Size, len(l.Tar)))
	}
	return strings.Join(s, " + ")
}

// Result is the built index and its images.
type Result struct {
	Index  Descriptor
	Images []Image
}

func variant(arch string) string {
	if arch == "arm64" {
		return "v8"
	}
	return ""
}

// Build writes the OCI image layout into dir (replacing it) and returns what it wrote.
func Build(spec Spec, dir string) (Result, error) {
	if err := os.RemoveAll(dir); err != nil {
		return Result{}, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return Result{}, err
	}
	put := func(media string, data []byte) (Descriptor, error) {
		d := Descriptor{MediaType: media, Digest: digest(data), Size: int64(len(data))}
		return d, os.WriteFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d.Digest, "sha256:")), data, 0o644)
	}
	var res Result
	var index struct {
		SchemaVersion int               `json:"schemaVersion"`
		MediaType     string            `json:"mediaType"`
		Manifests     []Descriptor      `json:"manifests"`
		Annotations   map[string]string `json:"annotations,omitempty"`
	}
	index.SchemaVersion, index.MediaType = 2, mediaIndex
	annotations := spec.annotations()
	for _, p := range spec.Platforms {
		im := Image{Platform: p}
		for _, ls := range p.Layers {
			t, err := layerTar(ls.Dir, ls.MTime)
			if err != nil {
				return Result{}, err
			}
			gz, err := gzipBytes(t)
			if err != nil {
				return Result{}, err
			}
			gd, err := put(mediaLayerGz, gz)
			if err != nil {
				return Result{}, err
			}
			im.Layers = append(im.Layers, Layer{Tar: t, DiffID: digest(t), Gz: gd})
		}
		im.Config = spec.config(p, im.Layers)
		cd, err := put(mediaConfig, im.Config)
		if err != nil {
			return Result{}, err
		}
		im.ConfigD = cd
		man := map[string]any{
			"schemaVersion": 2,
			"mediaType":     mediaManifest,
			"config":        cd,
			"layers":        layerDescriptors(im.Layers),
			"annotations":   annotations,
		}
		md, err := put(mediaManifest, mustJSON(man))
		if err != nil {
			return Result{}, err
		}
		md.Platform = &OCIPlatform{Architecture: p.Arch, OS: p.OS, Variant: variant(p.Arch)}
		im.Manifest = md
		index.Manifests = append(index.Manifests, md)
		res.Images = append(res.Images, im)
	}
	index.Annotations = annotations
	idx, err := put(mediaIndex, mustJSON(index))
	if err != nil {
		return Result{}, err
	}
	res.Index = idx
	top := idx
	top.Annotations = map[string]string{
		"org.opencontainers.image.ref.name": spec.Tag,
		"io.containerd.image.name":          spec.Repo + ":" + spec.Tag,
	}
	layout := map[string]any{"schemaVersion": 2, "mediaType": mediaIndex, "manifests": []Descriptor{top}}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), mustJSON(layout), 0o644); err != nil {
		return Result{}, err
	}
	return res, os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
}

func layerDescriptors(ls []Layer) []Descriptor {
	var d []Descriptor
	for _, l := range ls {
		d = append(d, l.Gz)
	}
	return d
}

func (spec Spec) annotations() map[string]string {
	a := map[string]string{"org.opencontainers.image.created": spec.Created.Format(time.RFC3339)}
	for k, v := range spec.Labels {
		a[k] = v
	}
	return a
}

// config is the image configuration for p: JSON with sorted keys (encoding/json sorts maps).
func (spec Spec) config(p Platform, layers []Layer) []byte {
	var diffIDs []string
	for _, l := range layers {
		diffIDs = append(diffIDs, l.DiffID)
	}
	created := spec.Created.Format(time.RFC3339)
	cfg := map[string]any{
		"created":      created,
		"architecture": p.Arch,
		"os":           p.OS,
		"config": map[string]any{
			"Env":        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			"Entrypoint": spec.Entrypoint,
			"Labels":     spec.Labels,
			"WorkingDir": "/",
		},
		"rootfs":  map[string]any{"type": "layers", "diff_ids": diffIDs},
		"history": history(created, p.Layers),
	}
	if v := variant(p.Arch); v != "" {
		cfg["variant"] = v
	}
	return mustJSON(cfg)
}

// history names each layer by its position: the input directories' paths take no part in the
// image, so two builds from different work directories are the same.
func history(created string, dirs []LayerSpec) []map[string]string {
	var h []map[string]string
	for i := range dirs {
		h = append(h, map[string]string{"created": created, "created_by": fmt.Sprintf("kube-proxy-ipvs build/image.sh, layer %d of %d", i+1, len(dirs))})
	}
	return h
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func gzipBytes(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// layerTar archives the tree under root, in lexical path order, with owner 0:0 and every mtime
// at mtime; hard links within the tree become tar hard links. Only directories, regular files
// and symbolic links are allowed.
func layerTar(root string, mtime time.Time) ([]byte, error) {
	var paths []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path != root {
			paths = append(paths, path)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	rel := func(p string) string { r, _ := filepath.Rel(root, p); return filepath.ToSlash(r) }
	sort.Slice(paths, func(i, j int) bool { return rel(paths[i]) < rel(paths[j]) })

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	seen := map[[2]uint64]string{} // (dev, inode) of regular files with more than one link
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil {
			return nil, err
		}
		name := rel(p)
		h := &tar.Header{Name: name, ModTime: mtime, Mode: int64(fi.Mode().Perm()), Format: tar.FormatPAX}
		if fi.Mode()&fs.ModeSetuid != 0 {
			h.Mode |= 0o4000
		}
		if fi.Mode()&fs.ModeSetgid != 0 {
			h.Mode |= 0o2000
		}
		if fi.Mode()&fs.ModeSticky != 0 {
			h.Mode |= 0o1000
		}
		var body []byte
		switch {
		case fi.IsDir():
			h.Typeflag, h.Name = tar.TypeDir, name+"/"
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return nil, err
			}
			h.Typeflag, h.Linkname = tar.TypeSymlink, target
		case fi.Mode().IsRegular():
			st, _ := fi.Sys().(*syscall.Stat_t)
			if st != nil && st.Nlink > 1 {
				key := [2]uint64{uint64(st.Dev), st.Ino}
				if first, ok := seen[key]; ok {
					h.Typeflag, h.Linkname = tar.TypeLink, first
					break
				}
				seen[key] = name
			}
			if body, err = os.ReadFile(p); err != nil {
				return nil, err
			}
			h.Typeflag, h.Size = tar.TypeReg, int64(len(body))
		default:
			return nil, fmt.Errorf("%s: unsupported file type %s", p, fi.Mode().Type())
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteDockerArchive writes im as a docker-archive (the `docker save` format before Docker 25:
// manifest.json, repositories, the config as <hex>.json, each layer uncompressed as <hex>.tar),
// which docker load, containerd's import (ctr images import, kind load image-archive) and
// skopeo read.
func WriteDockerArchive(path string, spec Spec, im Image) error {
	hexOf := func(d string) string { return strings.TrimPrefix(d, "sha256:") }
	ref := spec.Repo + ":" + spec.Tag
	type entry struct {
		name string
		data []byte
	}
	cfgName := hexOf(im.ConfigD.Digest) + ".json"
	var layerNames []string
	entries := []entry{{cfgName, im.Config}}
	for _, l := range im.Layers {
		n := hexOf(l.DiffID) + ".tar"
		layerNames = append(layerNames, n)
		entries = append(entries, entry{n, l.Tar})
	}
	manifest := []map[string]any{{"Config": cfgName, "RepoTags": []string{ref}, "Layers": layerNames}}
	entries = append(entries, entry{"manifest.json", mustJSON(manifest)})
	top := hexOf(im.Layers[len(im.Layers)-1].DiffID)
	repos := map[string]map[string]string{spec.Repo: {spec.Tag: top}}
	entries = append(entries, entry{"repositories", mustJSON(repos)})
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })

	f, err := os.Create(path + ".tmp")
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), ModTime: spec.Created, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			f.Close()
			return err
		}
		if _, err := tw.Write(e.data); err != nil {
			f.Close()
			return err
		}
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}
