//go:build linux

package sockdiag

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/nlmsg"
)

// diagMsg builds an inet_diag_msg as the kernel sends it: the socket's family, state, port and
// address, a peer, an inode, then the attributes attrs writes.
func diagMsg(family, state uint8, addr string, port uint16, attrs func(w *nlmsg.Writer)) []byte {
	b := make([]byte, msgLen)
	b[0], b[1] = family, state
	binary.BigEndian.PutUint16(b[4:], port)
	binary.BigEndian.PutUint16(b[6:], 40000) // a peer port, as an established socket has
	copy(b[8:24], netip.MustParseAddr(addr).AsSlice())
	binary.NativeEndian.PutUint32(b[68:], 123456) // idiag_inode
	w := nlmsg.Writer{B: b}
	w.Put(8, []byte{0}) // INET_DIAG_SHUTDOWN, always sent
	if attrs != nil {
		attrs(&w)
	}
	return w.B
}

func v6only(v byte) func(w *nlmsg.Writer) {
	return func(w *nlmsg.Writer) { w.Put(attrSKV6Only, []byte{v}) }
}

// sctpLocals writes INET_DIAG_LOCALS as sctp_diag does: a sockaddr_storage per bound address.
func sctpLocals(port uint16, addrs ...string) func(w *nlmsg.Writer) {
	return func(w *nlmsg.Writer) { w.Put(attrLocals, sctpLocalsBytes(port, addrs...)) }
}

func sctpLocalsBytes(port uint16, addrs ...string) []byte {
	var v []byte
	for _, s := range addrs {
		sa := make([]byte, sockaddrStorageLen)
		a := netip.MustParseAddr(s)
		binary.BigEndian.PutUint16(sa[2:], port)
		if a.Is4() {
			binary.NativeEndian.PutUint16(sa, unix.AF_INET)
			copy(sa[4:], a.AsSlice())
		} else {
			binary.NativeEndian.PutUint16(sa, unix.AF_INET6)
			copy(sa[8:], a.AsSlice())
		}
		v = append(v, sa...)
	}
	return v
}

func TestAppendListeners(t *testing.T) {
	const established = 1
	l := func(p Protocol, a string, port uint16, dual bool) Listener {
		return Listener{Protocol: p, Address: netip.MustParseAddr(a), Port: port, DualStack: dual}
	}
	for _, tc := range []struct {
		name  string
		proto Protocol
		msg   []byte
		want  []Listener
	}{
		{"tcp on an address", TCP, diagMsg(unix.AF_INET, stateListen, "10.0.0.1", 80, nil),
			[]Listener{l(TCP, "10.0.0.1", 80, false)}},
		{"tcp on ::, dual stack", TCP, diagMsg(unix.AF_INET6, stateListen, "::", 22, v6only(0)),
			[]Listener{l(TCP, "::", 22, true)}},
		{"tcp on ::, IPv6 only", TCP, diagMsg(unix.AF_INET6, stateListen, "::", 22, v6only(1)),
			[]Listener{l(TCP, "::", 22, false)}},
		{"tcp on :: without the v6only attribute: taken as dual stack", TCP, diagMsg(unix.AF_INET6, stateListen, "::", 22, nil),
			[]Listener{l(TCP, "::", 22, true)}},
		{"a specific IPv6 address is never dual stack", TCP, diagMsg(unix.AF_INET6, stateListen, "fd00::1", 443, v6only(0)),
			[]Listener{l(TCP, "fd00::1", 443, false)}},
		{"IPv4-mapped: the IPv4 address", TCP, diagMsg(unix.AF_INET6, stateListen, "::ffff:10.0.0.2", 81, v6only(0)),
			[]Listener{l(TCP, "10.0.0.2", 81, false)}},
		{"established tcp", TCP, diagMsg(unix.AF_INET, established, "10.0.0.1", 80, nil), nil},
		{"unconnected udp", UDP, diagMsg(unix.AF_INET, stateClose, "0.0.0.0", 53, nil),
			[]Listener{l(UDP, "0.0.0.0", 53, false)}},
		{"connected udp", UDP, diagMsg(unix.AF_INET, established, "10.0.0.1", 5353, nil), nil},
		{"udp without a port", UDP, diagMsg(unix.AF_INET, stateClose, "0.0.0.0", 0, nil), nil},
		{"closed tcp", TCP, diagMsg(unix.AF_INET, stateClose, "0.0.0.0", 6000, nil), nil},
		{"sctp on two addresses", SCTP, diagMsg(unix.AF_INET, stateListen, "10.0.0.1", 3868, sctpLocals(3868, "10.0.0.1", "192.0.2.1")),
			[]Listener{l(SCTP, "10.0.0.1", 3868, false), l(SCTP, "192.0.2.1", 3868, false)}},
		{"sctp on ::, dual stack", SCTP, diagMsg(unix.AF_INET6, stateListen, "::", 9, func(w *nlmsg.Writer) {
			v6only(0)(w)
			sctpLocals(9, "::")(w)
		}), []Listener{l(SCTP, "::", 9, true)}},
		{"sctp without locals", SCTP, diagMsg(unix.AF_INET, stateListen, "0.0.0.0", 9, nil),
			[]Listener{l(SCTP, "0.0.0.0", 9, false)}},
	} {
		got, err := appendListeners(nil, tc.proto, tc.msg)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	for name, msg := range map[string][]byte{
		"short":                   make([]byte, msgLen-1),
		"another family":          diagMsg(unix.AF_UNIX, stateListen, "10.0.0.1", 80, nil),
		"overlong attribute":      append(diagMsg(unix.AF_INET, stateListen, "10.0.0.1", 80, nil), 200, 0, 1, 0),
		"two-byte v6only":         diagMsg(unix.AF_INET6, stateListen, "::", 22, func(w *nlmsg.Writer) { w.Put(attrSKV6Only, []byte{0, 0}) }),
		"locals not whole":        diagMsg(unix.AF_INET, stateListen, "10.0.0.1", 80, func(w *nlmsg.Writer) { w.Put(attrLocals, make([]byte, 100)) }),
		"local of another family": diagMsg(unix.AF_INET, stateListen, "10.0.0.1", 80, func(w *nlmsg.Writer) { w.Put(attrLocals, make([]byte, sockaddrStorageLen)) }),
		"a bad local after a good one": diagMsg(unix.AF_INET, stateListen, "10.0.0.1", 80, func(w *nlmsg.Writer) {
			w.Put(attrLocals, append(sctpLocalsBytes(80, "10.0.0.1"), make([]byte, sockaddrStorageLen)...))
		}),
	} {
		proto := TCP
		if strings.Contains(name, "local") {
			proto = SCTP
		}
		// Nothing of a malformed message is appended.
		before := []Listener{{Protocol: UDP, Address: netip.IPv6Unspecified(), Port: 53}}
		if got, err := appendListeners(before, proto, msg); !errors.Is(err, nlmsg.ErrMalformed) || !slices.Equal(got, before) {
			t.Errorf("%s: %v, err %v; want ErrMalformed and %v", name, got, err, before)
		}
	}
}

// TestPutRequest: the request asks for the listening state only (a dump of every state walks
// every established connection), of one family and protocol, without a socket filter.
func TestPutRequest(t *testing.T) {
	for _, tc := range []struct {
		family uint8
		proto  Protocol
		ipp    uint8
		states uint32
	}{
		{unix.AF_INET, TCP, unix.IPPROTO_TCP, 1 << 10},
		{unix.AF_INET6, UDP, unix.IPPROTO_UDP, 1 << 7},
		{unix.AF_INET6, SCTP, unix.IPPROTO_SCTP, 1 << 10},
	} {
		var w nlmsg.Writer
		putRequest(&w, tc.family, tc.proto)
		b := w.B
		if len(b) != reqLen || b[0] != tc.family || b[1] != tc.ipp || b[2] != 0 ||
			binary.NativeEndian.Uint32(b[4:]) != tc.states || slices.ContainsFunc(b[8:], func(c byte) bool { return c != 0 }) {
			t.Errorf("%s of family %d: request % x", tc.proto, tc.family, b)
		}
	}
}
