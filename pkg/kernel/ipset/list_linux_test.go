//go:build linux

package ipset

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/nlmsg"
)

// dumpMsg builds one message of a set's dump as the kernel sends it: the header when typ is
// not empty (a continuation message carries only the name), then the entries, each a function
// writing the attributes of one IPSET_ATTR_DATA.
type dumpMsg struct {
	name, typ string
	family    uint8
	head      func(w *nlmsg.Writer)
	entries   []func(w *nlmsg.Writer)
}

func (m dumpMsg) bytes() []byte {
	w := nlmsg.Writer{B: []byte{m.family, 0, 0, 0}}
	w.Put(ipsetAttrProtocol, []byte{7})
	w.Str(ipsetAttrSetName, m.name)
	if m.typ != "" {
		w.Str(ipsetAttrTypeName, m.typ)
		w.Put(4, []byte{1}) // IPSET_ATTR_REVISION
		w.Put(ipsetAttrFamily, []byte{m.family})
		data := w.Nest(ipsetAttrData | nlaFNested)
		w.Put(18|nlaFNetByteorder, binary.BigEndian.AppendUint32(nil, 1024)) // IPSET_ATTR_HASHSIZE
		if m.head != nil {
			m.head(&w)
		}
		w.End(data)
	}
	if m.entries != nil {
		adt := w.Nest(ipsetAttrADT | nlaFNested)
		for _, e := range m.entries {
			d := w.Nest(ipsetAttrData | nlaFNested)
			e(&w)
			w.End(d)
		}
		w.End(adt)
	}
	return w.B
}

const nlaFNested = 1 << 15

func addr(typ uint16, a string) func(w *nlmsg.Writer) {
	return func(w *nlmsg.Writer) {
		ip := netip.MustParseAddr(a)
		n := w.Nest(typ | nlaFNested)
		if ip.Is4() {
			w.Put(ipsetAttrIPv4|nlaFNetByteorder, ip.AsSlice())
		} else {
			w.Put(ipsetAttrIPv6|nlaFNetByteorder, ip.AsSlice())
		}
		w.End(n)
	}
}

func port(typ uint16, p uint16) func(w *nlmsg.Writer) {
	return func(w *nlmsg.Writer) { w.Put(typ|nlaFNetByteorder, binary.BigEndian.AppendUint16(nil, p)) }
}

func u8attr(typ uint16, v uint8) func(w *nlmsg.Writer) {
	return func(w *nlmsg.Writer) { w.Put(typ, []byte{v}) }
}

func entry(parts ...func(w *nlmsg.Writer)) func(w *nlmsg.Writer) {
	return func(w *nlmsg.Writer) {
		for _, p := range parts {
			p(w)
		}
	}
}

func listed(t *testing.T, name string, msgs ...dumpMsg) (Content, error) {
	t.Helper()
	l := setListing{name: name}
	for _, m := range msgs {
		if err := l.add(m.bytes()); err != nil {
			return Content{}, err
		}
	}
	return l.Content, nil
}

// TestSetListing reads each set type the proxier creates from dump messages as the kernel sends
// them and requires the `ipset save` spelling that ParseSave reads from the tool.
func TestSetListing(t *testing.T) {
	const tcp, udp, sctp = 6, 17, 132
	for _, tc := range []struct {
		name string
		msgs []dumpMsg
		want Content
	}{{
		name: "hash:ip,port in two messages",
		msgs: []dumpMsg{
			{name: "KUBE-CLUSTER-IP", typ: HashIPPort, family: nfprotoIPv4, entries: []func(*nlmsg.Writer){
				entry(addr(ipsetAttrIP, "10.96.0.1"), port(ipsetAttrPort, 443), u8attr(ipsetAttrProto, tcp)),
			}},
			{name: "KUBE-CLUSTER-IP", entries: []func(*nlmsg.Writer){
				entry(addr(ipsetAttrIP, "10.96.0.10"), port(ipsetAttrPort, 53), u8attr(ipsetAttrProto, udp)),
				entry(addr(ipsetAttrIP, "10.96.0.11"), port(ipsetAttrPort, 9), u8attr(ipsetAttrProto, sctp)),
			}},
		},
		want: Content{Set: Set{Name: "KUBE-CLUSTER-IP", Type: HashIPPort, Family: FamilyInet},
			Entries: []string{"10.96.0.1,tcp:443", "10.96.0.10,udp:53", "10.96.0.11,sctp:9"}},
	}, {
		name: "empty IPv6 set",
		msgs: []dumpMsg{{name: "KUBE-6-CLUSTER-IP", typ: HashIPPort, family: nfprotoIPv6}},
		want: Content{Set: Set{Name: "KUBE-6-CLUSTER-IP", Type: HashIPPort, Family: FamilyInet6}},
	}, {
		name: "hash:ip,port,ip IPv6",
		msgs: []dumpMsg{{name: "KUBE-6-LOOP-BACK", typ: HashIPPortIP, family: nfprotoIPv6, entries: []func(*nlmsg.Writer){
			entry(addr(ipsetAttrIP, "fd00:0::1"), port(ipsetAttrPort, 80), u8attr(ipsetAttrProto, tcp), addr(ipsetAttrIP2, "fd00::1")),
		}}},
		want: Content{Set: Set{Name: "KUBE-6-LOOP-BACK", Type: HashIPPortIP, Family: FamilyInet6},
			Entries: []string{"fd00::1,tcp:80,fd00::1"}},
	}, {
		name: "hash:ip,port,net with a network and a host",
		msgs: []dumpMsg{{name: "KUBE-LOAD-BALANCER-SOURCE-CIDR", typ: HashIPPortNet, family: nfprotoIPv4, entries: []func(*nlmsg.Writer){
			entry(addr(ipsetAttrIP, "192.0.2.1"), port(ipsetAttrPort, 443), u8attr(ipsetAttrProto, tcp),
				addr(ipsetAttrIP2, "10.0.0.0"), u8attr(ipsetAttrCIDR2, 8)),
			entry(addr(ipsetAttrIP, "192.0.2.1"), port(ipsetAttrPort, 443), u8attr(ipsetAttrProto, tcp),
				addr(ipsetAttrIP2, "10.0.0.7"), u8attr(ipsetAttrCIDR2, 32)),
		}}},
		want: Content{Set: Set{Name: "KUBE-LOAD-BALANCER-SOURCE-CIDR", Type: HashIPPortNet, Family: FamilyInet},
			Entries: []string{"192.0.2.1,tcp:443,10.0.0.0/8", "192.0.2.1,tcp:443,10.0.0.7"}},
	}, {
		name: "hash:net and hash:ip",
		msgs: []dumpMsg{{name: "KUBE-NET", typ: HashNet, family: nfprotoIPv4, entries: []func(*nlmsg.Writer){
			entry(addr(ipsetAttrIP, "10.0.0.0"), u8attr(ipsetAttrCIDR, 16)),
			entry(addr(ipsetAttrIP, "10.1.2.3"), u8attr(ipsetAttrCIDR, 32)),
		}}},
		want: Content{Set: Set{Name: "KUBE-NET", Type: HashNet, Family: FamilyInet},
			Entries: []string{"10.0.0.0/16", "10.1.2.3"}},
	}, {
		name: "bitmap:port",
		msgs: []dumpMsg{{name: "KUBE-NODE-PORT-TCP", typ: BitmapPort, family: 0,
			head: entry(port(ipsetAttrPort, 0), port(ipsetAttrPortTo, 65535)),
			entries: []func(*nlmsg.Writer){
				entry(port(ipsetAttrPort, 30080)), entry(port(ipsetAttrPort, 32767)),
			}}},
		want: Content{Set: Set{Name: "KUBE-NODE-PORT-TCP", Type: BitmapPort, Range: "0-65535"},
			Entries: []string{"30080", "32767"}},
	}} {
		got, err := listed(t, tc.want.Name, tc.msgs...)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v, %v\nwant %+v", tc.name, got, err, tc.want)
		}
	}
}

// TestSetListingRefuses: what the reader cannot spell as the tool does is an error (List then
// runs the tool), never a wrong entry.
func TestSetListingRefuses(t *testing.T) {
	ipPort := func(proto uint8) func(*nlmsg.Writer) {
		return entry(addr(ipsetAttrIP, "10.96.0.1"), port(ipsetAttrPort, 80), u8attr(ipsetAttrProto, proto))
	}
	for _, tc := range []struct {
		name string
		msgs []dumpMsg
		want error // errNotDecoded or nlmsg.ErrMalformed
	}{
		{"another set type", []dumpMsg{{name: "S", typ: "hash:mac", family: nfprotoIPv4,
			entries: []func(*nlmsg.Writer){entry()}}}, errNotDecoded},
		{"icmp entry", []dumpMsg{{name: "S", typ: HashIPPort, family: nfprotoIPv4,
			entries: []func(*nlmsg.Writer){ipPort(1)}}}, errNotDecoded},
		{"unknown family", []dumpMsg{{name: "S", typ: HashIPPort, family: 7}}, errNotDecoded},
		{"entry without its port", []dumpMsg{{name: "S", typ: HashIPPort, family: nfprotoIPv4,
			entries: []func(*nlmsg.Writer){entry(addr(ipsetAttrIP, "10.96.0.1"))}}}, nlmsg.ErrMalformed},
		{"hash:ip,port,ip without its second address", []dumpMsg{{name: "S", typ: HashIPPortIP, family: nfprotoIPv4,
			entries: []func(*nlmsg.Writer){ipPort(6)}}}, nlmsg.ErrMalformed},
		{"prefix longer than the address", []dumpMsg{{name: "S", typ: HashNet, family: nfprotoIPv4,
			entries: []func(*nlmsg.Writer){entry(addr(ipsetAttrIP, "10.0.0.0"), u8attr(ipsetAttrCIDR, 33))}}}, nlmsg.ErrMalformed},
		{"bitmap without its range", []dumpMsg{{name: "S", typ: BitmapPort}}, nlmsg.ErrMalformed},
		{"continuation before the header", []dumpMsg{{name: "S", entries: []func(*nlmsg.Writer){ipPort(6)}}}, nlmsg.ErrMalformed},
		{"another set's message", []dumpMsg{{name: "S", typ: HashIPPort, family: nfprotoIPv4}, {name: "T"}}, nlmsg.ErrMalformed},
		// What the kernel never holds: an entry that Canonical would refuse or spell otherwise.
		{"an IPv6 address in an IPv4 set", []dumpMsg{{name: "S", typ: HashIP, family: nfprotoIPv4,
			entries: []func(*nlmsg.Writer){entry(addr(ipsetAttrIP, "fd00::1"))}}}, nlmsg.ErrMalformed},
		{"an IPv4 second address in an IPv6 set", []dumpMsg{{name: "S", typ: HashIPPortIP, family: nfprotoIPv6,
			entries: []func(*nlmsg.Writer){entry(addr(ipsetAttrIP, "fd00::1"), port(ipsetAttrPort, 80),
				u8attr(ipsetAttrProto, 6), addr(ipsetAttrIP2, "10.0.0.1"))}}}, nlmsg.ErrMalformed},
		{"a network with host bits", []dumpMsg{{name: "S", typ: HashNet, family: nfprotoIPv4,
			entries: []func(*nlmsg.Writer){entry(addr(ipsetAttrIP, "10.0.0.1"), u8attr(ipsetAttrCIDR, 8))}}}, nlmsg.ErrMalformed},
		{"a /0 network", []dumpMsg{{name: "S", typ: HashNet, family: nfprotoIPv4,
			entries: []func(*nlmsg.Writer){entry(addr(ipsetAttrIP, "0.0.0.0"), u8attr(ipsetAttrCIDR, 0))}}}, nlmsg.ErrMalformed},
		{"a port outside the bitmap's range", []dumpMsg{{name: "S", typ: BitmapPort,
			head:    entry(port(ipsetAttrPort, 30000), port(ipsetAttrPortTo, 32767)),
			entries: []func(*nlmsg.Writer){entry(port(ipsetAttrPort, 80))}}}, nlmsg.ErrMalformed},
		{"a bitmap range upside down", []dumpMsg{{name: "S", typ: BitmapPort,
			head: entry(port(ipsetAttrPort, 32767), port(ipsetAttrPortTo, 30000))}}, nlmsg.ErrMalformed},
		{"another type in a continuation", []dumpMsg{{name: "S", typ: HashIP, family: nfprotoIPv4},
			{name: "S", typ: BitmapPort, entries: []func(*nlmsg.Writer){entry(port(ipsetAttrPort, 80))}}}, nlmsg.ErrMalformed},
	} {
		_, err := listed(t, "S", tc.msgs...)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		}
	}
	l := setListing{name: "S"}
	if err := l.add([]byte{2, 0}); !errors.Is(err, nlmsg.ErrMalformed) {
		t.Errorf("a short message: err %v", err)
	}
}

// TestListFallsBackToTheTool: List reads named sets over netlink without a process; when that
// fails, and for every set, it runs `ipset save` and keeps the named sets.
func TestListFallsBackToTheTool(t *testing.T) {
	save := "create A hash:ip,port family inet hashsize 1024 maxelem 65536\nadd A 10.0.0.1,tcp:80\n" +
		"create B bitmap:port range 0-65535\nadd B 30000\n"
	a := Content{Set: Set{Name: "A", Type: HashIPPort, Family: FamilyInet}, Entries: []string{"10.0.0.1,tcp:80"}}
	b := Content{Set: Set{Name: "B", Type: BitmapPort, Range: "0-65535"}, Entries: []string{"30000"}}
	fe := &fakeExec{out: save}
	var asked []string
	x := &Kernel{exec: fe, lister: func(names []string) ([]Content, error) {
		asked = names
		return []Content{a}, nil
	}}
	if got, err := x.List("A", "missing"); err != nil || !reflect.DeepEqual(got, []Content{a}) || len(fe.ran) != 0 ||
		strings.Join(asked, " ") != "A missing" {
		t.Errorf("List over netlink = %+v, %v after running %v, asking %v", got, err, fe.ran, asked)
	}
	x.lister = func([]string) ([]Content, error) { return nil, errNotDecoded }
	if got, err := x.List("B", "missing", "A"); err != nil || !reflect.DeepEqual(got, []Content{b, a}) ||
		strings.Join(fe.ran, ";") != "ipset save" {
		t.Errorf("List after netlink failed = %+v, %v after running %v; want B and A from the tool", got, err, fe.ran)
	}
	fe.ran = nil
	if got, err := x.List(); err != nil || !reflect.DeepEqual(got, []Content{a, b}) || len(fe.ran) != 1 {
		t.Errorf("List of every set = %+v, %v after running %v; want both from the tool", got, err, fe.ran)
	}
}
