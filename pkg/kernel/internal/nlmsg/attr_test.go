package nlmsg

import (
	"encoding/binary"
	"errors"
	"testing"
)

func TestWriterAttrs(t *testing.T) {
	var w Writer
	n := w.Nest(1)
	w.U16(2, 0x0102)
	w.BE16(3, 80)
	w.U32(4, 7)
	w.Str(5, "rr")
	w.Put(6, []byte{10, 0, 0, 1, 9})
	w.End(n)
	w.U32(9, 1)
	if len(w.B)%4 != 0 {
		t.Fatalf("unaligned: %d bytes", len(w.B))
	}
	inner, err := Nested(w.B, 1)
	if err != nil || inner == nil {
		t.Fatalf("Nested: %v", err)
	}
	if got := int(binary.NativeEndian.Uint16(w.B)); got != 4+len(inner) {
		t.Errorf("nest length %d, payload %d", got, len(inner))
	}
	got := map[uint16][]byte{}
	if err := Attrs(inner, func(typ uint16, v []byte) error { got[typ] = v; return nil }); err != nil {
		t.Fatal(err)
	}
	if v, _ := U16(got[2]); v != 0x0102 {
		t.Errorf("U16 %#x", v)
	}
	if v, _ := BE16(got[3]); v != 80 || got[3][0] != 0 || got[3][1] != 80 {
		t.Errorf("BE16 % x", got[3])
	}
	if v, _ := U32(got[4]); v != 7 {
		t.Errorf("U32 %d", v)
	}
	if string(got[5]) != "rr\x00" || string(got[6]) != "\x0a\x00\x00\x01\x09" {
		t.Errorf("Str %q Put % x", got[5], got[6])
	}
	if _, err := U32(got[2]); !errors.Is(err, ErrMalformed) {
		t.Errorf("U32 of 2 bytes: %v", err)
	}
	// An attribute whose length runs past its container.
	bad := append([]byte(nil), w.B...)
	binary.NativeEndian.PutUint16(bad, uint16(len(bad)+4))
	if err := Attrs(bad, func(uint16, []byte) error { return nil }); !errors.Is(err, ErrMalformed) {
		t.Errorf("overlong attribute: %v", err)
	}
	// Flags in the type (NLA_F_NESTED) are masked off.
	var f Writer
	f.U32(0x8000|3, 1)
	if v, err := Nested(f.B, 3); err != nil || v == nil {
		t.Errorf("type with NLA_F_NESTED: %v, %v", v, err)
	}
}
