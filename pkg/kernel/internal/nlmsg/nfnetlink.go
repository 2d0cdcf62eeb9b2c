package nlmsg

import "fmt"

// nfgenmsgLen is struct nfgenmsg, the header of every nfnetlink message (nf_tables, ipset):
// address family, version, resource id.
const nfgenmsgLen = 4

// nfnetlinkV0 is NFNETLINK_V0, the only version.
const nfnetlinkV0 = 0

// Nfgenmsg writes the nfnetlink header of a request for the address family.
func (w *Writer) Nfgenmsg(family uint8) {
	w.B = append(w.B, family, nfnetlinkV0, 0, 0)
}

// NfnetlinkAttrs returns the attributes of an nfnetlink message's body, after its header.
func NfnetlinkAttrs(body []byte) ([]byte, error) {
	if len(body) < nfgenmsgLen {
		return nil, fmt.Errorf("%w: nfnetlink message of %d bytes", ErrMalformed, len(body))
	}
	return body[nfgenmsgLen:], nil
}
