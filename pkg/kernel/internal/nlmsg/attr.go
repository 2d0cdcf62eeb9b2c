// Package nlmsg is the netlink framing the kernel adapters share: a socket that reuses one
// request and one receive buffer and walks each answer in place (Conn), and attribute encoding
// and decoding (Writer, Attrs). The adapters speak their protocols on top: generic netlink for
// IPVS (pkg/kernel/ipvs), rtnetlink address dumps (pkg/kernel/netdev), nfnetlink (nfnetlink.go)
// for the nf_tables generation (pkg/kernel/nftgeneration) and the ipset headers (pkg/kernel/ipset).
package nlmsg

import (
	"encoding/binary"
	"errors"
)

// ErrMalformed: an attribute or message whose length does not fit what holds it.
var ErrMalformed = errors.New("malformed netlink message")

const (
	attrHeaderLen = 4
	attrTypeMask  = 0x3fff // without NLA_F_NESTED and NLA_F_NET_BYTEORDER
)

// Writer appends to a request: raw bytes, or attributes (host byte order, 4-byte aligned).
type Writer struct{ B []byte }

// Put writes an attribute with the given payload.
func (w *Writer) Put(typ uint16, payload []byte) {
	w.header(typ, len(payload))
	w.B = append(w.B, payload...)
	w.pad()
}

func (w *Writer) header(typ uint16, payloadLen int) {
	w.B = binary.NativeEndian.AppendUint16(w.B, uint16(attrHeaderLen+payloadLen))
	w.B = binary.NativeEndian.AppendUint16(w.B, typ)
}

func (w *Writer) pad() {
	for len(w.B)%4 != 0 {
		w.B = append(w.B, 0)
	}
}

// U16 writes a 16-bit attribute in host byte order.
func (w *Writer) U16(typ, v uint16) {
	w.header(typ, 2)
	w.B = binary.NativeEndian.AppendUint16(w.B, v)
	w.pad()
}

// BE16 writes a 16-bit attribute in network byte order (ports).
func (w *Writer) BE16(typ, v uint16) {
	w.header(typ, 2)
	w.B = binary.BigEndian.AppendUint16(w.B, v)
	w.pad()
}

// U32 writes a 32-bit attribute in host byte order.
func (w *Writer) U32(typ uint16, v uint32) {
	w.header(typ, 4)
	w.B = binary.NativeEndian.AppendUint32(w.B, v)
}

// Str writes a NUL-terminated string attribute.
func (w *Writer) Str(typ uint16, s string) {
	w.header(typ, len(s)+1)
	w.B = append(w.B, s...)
	w.B = append(w.B, 0)
	w.pad()
}

// Nest starts a nested attribute; End(start) writes its length once its children are in.
func (w *Writer) Nest(typ uint16) int {
	start := len(w.B)
	w.header(typ, 0)
	return start
}

// End closes the nested attribute Nest started at start.
func (w *Writer) End(start int) {
	binary.NativeEndian.PutUint16(w.B[start:], uint16(len(w.B)-start))
}

// Attrs calls f for every attribute in b, with its type (flags masked off) and payload.
func Attrs(b []byte, f func(typ uint16, v []byte) error) error {
	for len(b) >= attrHeaderLen {
		l := int(binary.NativeEndian.Uint16(b))
		if l < attrHeaderLen || l > len(b) {
			return ErrMalformed
		}
		if err := f(binary.NativeEndian.Uint16(b[2:])&attrTypeMask, b[attrHeaderLen:l]); err != nil {
			return err
		}
		l = (l + 3) &^ 3
		if l >= len(b) {
			return nil
		}
		b = b[l:]
	}
	return nil
}

// Nested returns the payload of the first attribute of type typ in b, or nil.
func Nested(b []byte, typ uint16) ([]byte, error) {
	var out []byte
	err := Attrs(b, func(t uint16, v []byte) error {
		if t == typ && out == nil {
			out = v
		}
		return nil
	})
	return out, err
}

// U16 reads a 16-bit payload in host byte order.
func U16(v []byte) (uint16, error) {
	if len(v) < 2 {
		return 0, ErrMalformed
	}
	return binary.NativeEndian.Uint16(v), nil
}

// U32 reads a 32-bit payload in host byte order.
func U32(v []byte) (uint32, error) {
	if len(v) < 4 {
		return 0, ErrMalformed
	}
	return binary.NativeEndian.Uint32(v), nil
}

// BE16 reads a 16-bit payload in network byte order.
func BE16(v []byte) (uint16, error) {
	if len(v) < 2 {
		return 0, ErrMalformed
	}
	return binary.BigEndian.Uint16(v), nil
}
