// Command imageunpack unpacks the linux/amd64 image of an OCI image layout into a directory, on
// the host, before the lab's guest boots: the e2e test TestImage runs it as a container's root
// filesystem. Unpacking in the emulated guest took a minute; here it takes seconds.
//
// Usage: imageunpack -layout DIR -out DIR (OUT must not exist; OUT.json records the manifest and
// the image's configuration)
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/ociimage"
)

func main() {
	layout := flag.String("layout", "", "OCI image layout (make lab-image: _output/lab-image/oci)")
	out := flag.String("out", "", "root filesystem to create")
	arch := flag.String("arch", "amd64", "architecture (the lab's guest is amd64)")
	flag.Parse()
	if *layout == "" || *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	u, err := ociimage.Unpack(*layout, "linux", *arch, *out)
	if err != nil {
		fmt.Fprintf(os.Stderr, "imageunpack: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("imageunpack: linux/%s manifest %s into %s\n", *arch, u.Manifest, u.Rootfs)
}
