package nlmsg

import (
	"bytes"
	"errors"
	"testing"
)

func TestNfnetlinkHeader(t *testing.T) {
	var w Writer
	w.Nfgenmsg(2)
	w.Put(1, []byte{7})
	if want := []byte{2, 0, 0, 0, 5, 0, 1, 0, 7, 0, 0, 0}; !bytes.Equal(w.B, want) {
		t.Errorf("request %v, want %v", w.B, want)
	}
	attrs, err := NfnetlinkAttrs(w.B)
	if err != nil || !bytes.Equal(attrs, w.B[4:]) {
		t.Errorf("NfnetlinkAttrs = %v, %v; want the bytes after the header", attrs, err)
	}
	if _, err := NfnetlinkAttrs([]byte{2, 0, 0}); !errors.Is(err, ErrMalformed) {
		t.Errorf("a 3-byte body: err %v, want ErrMalformed", err)
	}
}
