//go:build linux

package ipset

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/nlmsg"
)

// The ipset netlink protocol (include/uapi/linux/netfilter/ipset/ip_set.h), as much of it as
// reading the sets' headers takes.
const (
	ipsetProtocol       = 6 // the oldest the kernel accepts; what vishvananda/netlink sends
	ipsetCmdList        = 7
	ipsetAttrProtocol   = 1
	ipsetAttrSetName    = 2
	ipsetAttrFlags      = 6
	ipsetAttrData       = 7
	ipsetAttrElements   = 24 // kernel-only, in a header's data since Linux 4.x
	ipsetFlagListHeader = 1 << 2
	nlaFNetByteorder    = 1 << 14
)

// netlinkEntryCounts asks the kernel for every set's header, without its entries, in one dump
// over a socket of its own (IPSET_CMD_LIST with IPSET_FLAG_LIST_HEADER: what `ipset list -t`
// asks for, without launching it). It works in the calling thread's network namespace. A set
// whose header carries no entry count (a kernel too old to send one) is an error, as in
// ParseTerse: the caller then reads the entries instead.
func netlinkEntryCounts() (map[string]int, error) {
	c, err := nlmsg.Open(unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	w := c.Begin()
	w.Nfgenmsg(unix.AF_INET)
	w.Put(ipsetAttrProtocol, []byte{ipsetProtocol})
	w.Put(ipsetAttrFlags|nlaFNetByteorder, binary.BigEndian.AppendUint32(nil, ipsetFlagListHeader))
	counts := map[string]int{}
	err = c.Do(unix.NFNL_SUBSYS_IPSET<<8|ipsetCmdList, true, func(_ uint16, body []byte) error {
		name, n, err := parseSetHeader(body)
		if err != nil {
			return err
		}
		counts[name] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading ipset headers: %w", err)
	}
	return counts, nil
}

// parseSetHeader reads a set's name and entry count from one message of a header dump.
func parseSetHeader(body []byte) (name string, entries int, err error) {
	attrs, err := nlmsg.NfnetlinkAttrs(body)
	if err != nil {
		return "", 0, err
	}
	found := false
	err = nlmsg.Attrs(attrs, func(typ uint16, v []byte) error {
		switch typ {
		case ipsetAttrSetName:
			name = nulTerminated(v)
		case ipsetAttrData:
			return nlmsg.Attrs(v, func(typ uint16, v []byte) error {
				if typ != ipsetAttrElements {
					return nil
				}
				if len(v) != 4 {
					return fmt.Errorf("%w: entry count of %d bytes", nlmsg.ErrMalformed, len(v))
				}
				entries, found = int(binary.BigEndian.Uint32(v)), true
				return nil
			})
		}
		return nil
	})
	switch {
	case err != nil:
		return "", 0, err
	case name == "":
		return "", 0, fmt.Errorf("%w: ipset header without a name", nlmsg.ErrMalformed)
	case !found:
		return "", 0, fmt.Errorf("ipset header of %s: no entry count", name)
	}
	return name, entries, nil
}

func nulTerminated(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
