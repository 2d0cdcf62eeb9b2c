//go:build linux

package nftgeneration

import (
	"bytes"
	"testing"
)

// Seeds: testdata/fuzz/<FuzzName>/, from nftgeneration_test.go's headers and NFT_MSG_NEWGEN bodies.
// `go test` runs them; `make fuzz` fuzzes.

// FuzzIsNFTSave: text is taken as the nf_tables backend's only when its header says so.
func FuzzIsNFTSave(f *testing.F) {
	f.Fuzz(func(t *testing.T, text []byte) {
		if IsNFTSave(text) && !bytes.Contains(text, []byte("(nf_tables)")) && !bytes.Contains(text, []byte("-nft-save ")) {
			t.Fatalf("%q taken as nf_tables", text)
		}
	})
}

// FuzzParseNewGen: a generation is found only in a message that holds one, without an error.
func FuzzParseNewGen(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		_, found, err := parseNewGen(body)
		if found && err != nil {
			t.Fatalf("found a generation and %v", err)
		}
		if found && len(body) < 4+8 {
			t.Fatalf("a generation in %d bytes", len(body))
		}
	})
}
