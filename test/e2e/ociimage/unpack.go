// Package ociimage unpacks one architecture's image from an OCI image layout (what `make image`
// writes) into a root filesystem, as a container runtime's snapshotter would: layers applied
// bottom first, whiteouts honoured. The standard library only, and none of build/oci: the lab
// does not trust the image's own build tool to read what it wrote.
package ociimage

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

const (
	mediaOCIIndex    = "application/vnd.oci.image.index.v1+json"
	mediaOCIManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaOCILayerGz  = "application/vnd.oci.image.layer.v1.tar+gzip"
)

type ociDescriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Platform  *struct {
		Architecture string `json:"architecture"`
		OS           string `json:"os"`
	} `json:"platform,omitempty"`
}

// ImageConfig is the part of an image's configuration a runtime uses to start it.
type ImageConfig struct {
	Env        []string `json:"Env"`
	Entrypoint []string `json:"Entrypoint"`
	WorkingDir string   `json:"WorkingDir"`
}

// Unpacked is one architecture's image unpacked into Rootfs.
type Unpacked struct {
	Rootfs   string
	Manifest string // the manifest's digest
	Config   ImageConfig
}

// Load reads what Unpack recorded beside the root filesystem rootfs (rootfs.json).
func Load(rootfs string) (*Unpacked, error) {
	b, err := os.ReadFile(rootfs + ".json")
	if err != nil {
		return nil, err
	}
	var u Unpacked
	if err := json.Unmarshal(b, &u); err != nil {
		return nil, fmt.Errorf("%s.json: %w", rootfs, err)
	}
	return &u, nil
}

func blobPath(layout, digest string) (string, error) {
	alg, hex, ok := strings.Cut(digest, ":")
	if !ok || alg != "sha256" || hex == "" || strings.ContainsAny(hex, "/.") {
		return "", fmt.Errorf("digest %q: want sha256:HEX", digest)
	}
	return filepath.Join(layout, "blobs", alg, hex), nil
}

func readBlob(layout, digest string, v any) error {
	p, err := blobPath(layout, digest)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// findManifest walks index.json (and nested image indexes) to the manifest of os/arch.
func findManifest(layout, osName, arch string) (string, error) {
	var idx struct{ Manifests []ociDescriptor }
	b, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil {
		return "", err
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return "", fmt.Errorf("index.json: %w", err)
	}
	for depth := 0; depth < 4; depth++ {
		var next []ociDescriptor
		for _, d := range idx.Manifests {
			switch d.MediaType {
			case mediaOCIManifest:
				if d.Platform == nil || (d.Platform.OS == osName && d.Platform.Architecture == arch) {
					return d.Digest, nil
				}
			case mediaOCIIndex:
				var sub struct{ Manifests []ociDescriptor }
				if err := readBlob(layout, d.Digest, &sub); err != nil {
					return "", err
				}
				next = append(next, sub.Manifests...)
			}
		}
		idx.Manifests = next
	}
	return "", fmt.Errorf("%s: no manifest for %s/%s", layout, osName, arch)
}

// Unpack unpacks the os/arch image of the OCI layout into dest (created; must not exist) and
// records its manifest and configuration in dest.json. Files are owned as the layers say when run
// as root, else by the caller.
func Unpack(layout, osName, arch, dest string) (*Unpacked, error) {
	md, err := findManifest(layout, osName, arch)
	if err != nil {
		return nil, err
	}
	if dest, err = filepath.Abs(dest); err != nil {
		return nil, err
	}
	var man struct {
		Config ociDescriptor
		Layers []ociDescriptor
	}
	if err := readBlob(layout, md, &man); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", md, err)
	}
	var cfg struct{ Config ImageConfig }
	if err := readBlob(layout, man.Config.Digest, &cfg); err != nil {
		return nil, fmt.Errorf("config %s: %w", man.Config.Digest, err)
	}
	if err := os.Mkdir(dest, 0o755); err != nil {
		return nil, err
	}
	for _, l := range man.Layers {
		if l.MediaType != mediaOCILayerGz {
			return nil, fmt.Errorf("layer %s: media type %s not handled", l.Digest, l.MediaType)
		}
		p, err := blobPath(layout, l.Digest)
		if err != nil {
			return nil, err
		}
		if err := applyLayer(p, dest); err != nil {
			return nil, fmt.Errorf("layer %s: %w", l.Digest, err)
		}
	}
	u := &Unpacked{Rootfs: dest, Manifest: md, Config: cfg.Config}
	b, err := json.Marshal(u)
	if err != nil {
		return nil, err
	}
	return u, os.WriteFile(dest+".json", b, 0o644)
}

// inRoot is name's path under root: ".." cannot climb above root, and a parent directory that an
// earlier entry made a symlink (the image's /lib -> usr/lib) is followed while it stays in root;
// a link out of root is an error.
func inRoot(root, name string) (string, error) {
	clean := filepath.Clean("/" + name)
	if clean == "/" {
		return root, nil
	}
	// A parent that is a symlink (the image's /lib -> usr/lib) is resolved inside root.
	dir, base := filepath.Split(clean)
	parts := strings.Split(strings.Trim(dir, "/"), "/")
	cur := root
	for _, part := range parts {
		if part == "" {
			continue
		}
		next := filepath.Join(cur, part)
		for hops := 0; hops < 16; hops++ {
			target, err := os.Readlink(next)
			if err != nil {
				break
			}
			if filepath.IsAbs(target) {
				next = filepath.Join(root, filepath.Clean(target))
			} else {
				next = filepath.Join(filepath.Dir(next), target)
			}
			if !strings.HasPrefix(next+"/", root+"/") {
				return "", fmt.Errorf("%s leaves the root", name)
			}
		}
		cur = next
	}
	p := filepath.Join(cur, base)
	if !strings.HasPrefix(p+"/", root+"/") {
		return "", fmt.Errorf("%s leaves the root", name)
	}
	return p, nil
}

func applyLayer(blob, root string) error {
	f, err := os.Open(blob)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		p, err := inRoot(root, h.Name)
		if err != nil {
			return err
		}
		base := filepath.Base(p)
		if base == ".wh..wh..opq" { // opaque directory: the lower layers' contents go
			ents, _ := os.ReadDir(filepath.Dir(p))
			for _, e := range ents {
				if err := os.RemoveAll(filepath.Join(filepath.Dir(p), e.Name())); err != nil {
					return err
				}
			}
			continue
		}
		if strings.HasPrefix(base, ".wh.") {
			if err := os.RemoveAll(filepath.Join(filepath.Dir(p), strings.TrimPrefix(base, ".wh."))); err != nil {
				return err
			}
			continue
		}
		mode := h.FileInfo().Mode() & (os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky)
		if h.Typeflag != tar.TypeDir {
			_ = os.RemoveAll(p)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			w, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(w, tr)
			if cerr := w.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, p); err != nil {
				return err
			}
			continue // no chmod/chown of a symlink's target
		case tar.TypeLink:
			src, err := inRoot(root, h.Linkname)
			if err != nil {
				return err
			}
			if err := os.Link(src, p); err != nil {
				return err
			}
			continue
		default:
			return fmt.Errorf("%s: tar entry type %q not handled", h.Name, h.Typeflag)
		}
		if os.Geteuid() == 0 {
			if err := os.Lchown(p, h.Uid, h.Gid); err != nil {
				return err
			}
		}
		// After chown: chown clears set-id bits.
		if err := os.Chmod(p, mode); err != nil {
			return err
		}
	}
}
