//go:build linux

package netdev

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/nlmsg"
)

// ifaddr builds an RTM_NEWADDR body as the kernel sends it.
func ifaddr(family byte, index uint32, address, local []byte) []byte {
	w := nlmsg.Writer{B: []byte{family, 32, 0, 0}}
	w.B = binary.NativeEndian.AppendUint32(w.B, index)
	if address != nil {
		w.Put(unix.IFA_ADDRESS, address)
	}
	if local != nil {
		w.Put(unix.IFA_LOCAL, local)
	}
	w.Str(unix.IFA_LABEL, "eth0")
	return w.B
}

func TestParseAddrMsg(t *testing.T) {
	v6 := netip.MustParseAddr("fd00::5").AsSlice()
	mapped := netip.MustParseAddr("::ffff:10.0.0.9").AsSlice()
	for _, tc := range []struct {
		name  string
		body  []byte
		index int
		want  string // "" = not an address of ours (ok false)
	}{
		{"ipv4", ifaddr(unix.AF_INET, 3, []byte{10, 0, 0, 1}, []byte{10, 0, 0, 1}), 3, "10.0.0.1"},
		{"ipv4 point-to-point: the local end, not the peer", ifaddr(unix.AF_INET, 4, []byte{10, 0, 0, 2}, []byte{10, 0, 0, 1}), 4, "10.0.0.1"},
		{"ipv6 sends IFA_ADDRESS only", ifaddr(unix.AF_INET6, 5, v6, nil), 5, "fd00::5"},
		{"ipv4-mapped ipv6 unmapped", ifaddr(unix.AF_INET6, 6, mapped, nil), 6, "10.0.0.9"},
		{"other family", ifaddr(unix.AF_PACKET, 7, []byte{1, 2, 3, 4, 5, 6}, nil), 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			idx, a, ok, err := parseAddrMsg(tc.body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if ok {
					t.Errorf("parsed %v on %d, want nothing", a, idx)
				}
				return
			}
			if !ok || idx != tc.index || a != netip.MustParseAddr(tc.want) {
				t.Errorf("parseAddrMsg = %d %v %v, want %d %s", idx, a, ok, tc.index, tc.want)
			}
		})
	}
	for name, body := range map[string][]byte{
		"short ifaddrmsg":      {unix.AF_INET, 32},
		"ipv4 of 16 bytes":     ifaddr(unix.AF_INET, 1, v6, nil),
		"ipv4 without address": ifaddr(unix.AF_INET, 1, nil, nil),
		"overlong attribute":   append(ifaddr(unix.AF_INET, 1, nil, nil)[:8], 0xff, 0, 1, 0),
	} {
		if _, _, _, err := parseAddrMsg(body); !errors.Is(err, nlmsg.ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}
