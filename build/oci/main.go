// Command oci assembles kube-proxy-ipvs's image from root filesystem directories, without a
// container engine: an OCI image layout whose index names one manifest per architecture, and a
// docker-archive tarball per architecture (docker load, ctr images import, kind load
// image-archive). Every byte is a function of the input trees and the flags: entries sorted,
// owner root, every mtime SOURCE_DATE_EPOCH, gzip without a name or time, JSON with sorted keys.
// build/image.sh drives it; build/README.md says why a tool of our own.
//
//	oci -out DIR -repo REPO -tag TAG -created EPOCH [-label k=v]... \
//	    -image linux/amd64=LAYERDIR[@EPOCH][,LAYERDIR[@EPOCH]...] -image linux/arm64=...
//
// A layer's files carry its own EPOCH when given, else -created: build/image.sh dates the
// Debian layer by the last change to its recipe, so a new commit leaves that layer's digest alone.
//
// Writes DIR/oci (the layout), DIR/<name>-<tag>-linux-<arch>.tar, and prints the index digest.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	var (
		out, repo, tag, name, created string
		labels, images, entrypoint    multiFlag
	)
	flag.StringVar(&out, "out", "", "output directory")
	flag.StringVar(&repo, "repo", "", "image repository, e.g. ghcr.io/kube-proxy-ipvs/kube-proxy")
	flag.StringVar(&tag, "tag", "", "image tag")
	flag.StringVar(&name, "name", "kube-proxy", "archive file name prefix")
	flag.StringVar(&created, "created", os.Getenv("SOURCE_DATE_EPOCH"), "creation time, seconds since the epoch (SOURCE_DATE_EPOCH)")
	flag.Var(&labels, "label", "k=v: image label and annotation (repeatable)")
	flag.Var(&entrypoint, "entrypoint", "entrypoint argument (repeatable)")
	flag.Var(&images, "image", "os/arch=DIR[@EPOCH][,DIR[@EPOCH]...]: one image, one layer per directory, its files' mtime EPOCH (default -created) (repeatable)")
	flag.Parse()
	if out == "" || repo == "" || tag == "" || created == "" || len(images) == 0 {
		flag.Usage()
		os.Exit(2)
	}
	epoch, err := strconv.ParseInt(created, 10, 64)
	if err != nil {
		fatal(fmt.Errorf("-created %q: %v", created, err))
	}
	spec := Spec{
		Repo:       repo,
		Tag:        tag,
		Created:    time.Unix(epoch, 0).UTC(),
		Labels:     map[string]string{},
		Entrypoint: entrypoint,
	}
	for _, l := range labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			fatal(fmt.Errorf("-label %q: want key=value", l))
		}
		spec.Labels[k] = v
	}
	for _, im := range images {
		plat, dirs, ok := strings.Cut(im, "=")
		osName, arch, ok2 := strings.Cut(plat, "/")
		if !ok || !ok2 || dirs == "" {
			fatal(fmt.Errorf("-image %q: want os/arch=DIR[,DIR...]", im))
		}
		p := Platform{OS: osName, Arch: arch}
		for _, d := range strings.Split(dirs, ",") {
			l := LayerSpec{Dir: d, MTime: spec.Created}
			if dir, e, ok := strings.Cut(d, "@"); ok {
				n, err := strconv.ParseInt(e, 10, 64)
				if err != nil {
					fatal(fmt.Errorf("-image %q: layer epoch %q: %v", im, e, err))
				}
				l = LayerSpec{Dir: dir, MTime: time.Unix(n, 0).UTC()}
			}
			p.Layers = append(p.Layers, l)
		}
		spec.Platforms = append(spec.Platforms, p)
	}
	sort.Slice(spec.Platforms, func(i, j int) bool { return spec.Platforms[i].Arch < spec.Platforms[j].Arch })

	res, err := Build(spec, filepath.Join(out, "oci"))
	if err != nil {
		fatal(err)
	}
	for _, p := range res.Images {
		path := filepath.Join(out, fmt.Sprintf("%s-%s-%s-%s.tar", name, tag, p.Platform.OS, p.Platform.Arch))
		if err := WriteDockerArchive(path, spec, p); err != nil {
			fatal(err)
		}
		fmt.Fprintf(os.Stderr, "oci: %s/%s manifest %s, layers %s\n", p.Platform.OS, p.Platform.Arch, p.Manifest.Digest, p.layerSummary())
	}
	fmt.Println(res.Index.Digest)
}

func fatal(err error) {
	fmt.Fprintf(os.Stderr, "oci: %v\n", err)
	os.Exit(1)
}
