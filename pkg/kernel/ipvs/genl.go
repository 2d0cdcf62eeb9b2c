//go:build linux

package ipvs

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/nlmsg"
)

// genlConn sends IPVS requests over a generic netlink socket of its own (see nlmsg.Conn for
// why not moby/ipvs's). Used by one request at a time.
type genlConn struct {
	c      *nlmsg.Conn
	family uint16 // the IPVS family's generic netlink id
}

const genlHeaderLength = 4

// newGenlConn opens a socket in the calling thread's network namespace.
func newGenlConn(family uint16) (*genlConn, error) {
	c, err := nlmsg.Open(unix.NETLINK_GENERIC)
	if err != nil {
		return nil, err
	}
	return &genlConn{c: c, family: family}, nil
}

func (g *genlConn) close() { g.c.Close() }

// begin starts a request for the IPVS command cmd; append its attributes to the writer.
func (g *genlConn) begin(cmd uint8) *nlmsg.Writer {
	w := g.c.Begin()
	w.B = append(w.B, cmd, genlVersion, 0, 0)
	return w
}

// next starts the next request of a batch (nlmsg.Conn.BeginBatch) for the IPVS command cmd.
func (g *genlConn) next(cmd uint8) *nlmsg.Writer {
	w := g.c.Next()
	w.B = append(w.B, cmd, genlVersion, 0, 0)
	return w
}

// do sends the request and reads its answer: a dump calls each with the attributes of every
// object's message; any other request waits for its acknowledgement.
func (g *genlConn) do(dump bool, each func(attrs []byte) error) error {
	return g.c.Do(g.family, dump, func(typ uint16, body []byte) error {
		if typ != g.family || each == nil {
			return nil
		}
		if len(body) < genlHeaderLength {
			return fmt.Errorf("%w: short generic netlink message", nlmsg.ErrMalformed)
		}
		return each(body[genlHeaderLength:])
	})
}

// The generic netlink controller (include/uapi/linux/genetlink.h), which maps family names to
// the ids requests are sent to.
const (
	genlIDCtrl         = 0x10 // GENL_ID_CTRL
	ctrlCmdGetFamily   = 3
	ctrlAttrFamilyID   = 1 // u16
	ctrlAttrFamilyName = 2 // NUL-terminated string

	ipvsFamilyName = "IPVS"
)

// genlFamily asks the controller, on a socket opened for it in the calling thread's network
// namespace, for the id of the family name. A family that is not registered (IPVS without the
// ip_vs module) is ENOENT.
func genlFamily(name string) (uint16, error) {
	c, err := nlmsg.Open(unix.NETLINK_GENERIC)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	w := c.Begin()
	w.B = append(w.B, ctrlCmdGetFamily, 1, 0, 0)
	w.Str(ctrlAttrFamilyName, name)
	var id uint16
	err = c.Do(genlIDCtrl, false, func(typ uint16, body []byte) error {
		if typ != genlIDCtrl || len(body) < genlHeaderLength {
			return nil
		}
		return nlmsg.Attrs(body[genlHeaderLength:], func(t uint16, v []byte) error {
			if t != ctrlAttrFamilyID {
				return nil
			}
			var err error
			id, err = nlmsg.U16(v)
			return err
		})
	})
	if err == nil && id == 0 {
		err = fmt.Errorf("%w: no id for generic netlink family %s", nlmsg.ErrMalformed, name)
	}
	return id, err
}
