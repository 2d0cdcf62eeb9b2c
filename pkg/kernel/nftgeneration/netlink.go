//go:build linux

package nftgeneration

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/nlmsg"
)

// Netlink reads the generation of the calling thread's network namespace. It opens a socket per
// read: a proxier reads the generation once per family per verification (every syncPeriod), so
// a socket kept open would save nothing worth a socket per process.
type Netlink struct{}

var _ Reader = Netlink{}

const (
	getGen = unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETGEN
	newGen = unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWGEN
)

// Generation asks the kernel with NFT_MSG_GETGEN. The request names the nf_tables subsystem, so
// on a node without it loaded the kernel may load nf_tables to answer; callers ask only once
// they know iptables runs on nf_tables.
func (Netlink) Generation() (uint32, error) {
	c, err := nlmsg.Open(unix.NETLINK_NETFILTER)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.Begin().Nfgenmsg(unix.AF_UNSPEC)
	var gen uint32
	found := false
	err = c.Do(getGen, false, func(typ uint16, body []byte) error {
		if typ != newGen {
			return nil
		}
		g, ok, err := parseNewGen(body)
		gen, found = g, ok
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("reading the nf_tables generation: %w", err)
	}
	if !found {
		return 0, fmt.Errorf("reading the nf_tables generation: %w: no generation in the answer", nlmsg.ErrMalformed)
	}
	return gen, nil
}

// parseNewGen reads NFTA_GEN_ID (big-endian) from an NFT_MSG_NEWGEN body.
func parseNewGen(body []byte) (gen uint32, found bool, err error) {
	attrs, err := nlmsg.NfnetlinkAttrs(body)
	if err != nil {
		return 0, false, err
	}
	err = nlmsg.Attrs(attrs, func(typ uint16, v []byte) error {
		if typ != unix.NFTA_GEN_ID {
			return nil
		}
		if len(v) != 4 {
			return fmt.Errorf("%w: generation of %d bytes", nlmsg.ErrMalformed, len(v))
		}
		gen, found = binary.BigEndian.Uint32(v), true
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return gen, found, nil
}
