//go:build linux

package ipvs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// genlConn is a generic netlink socket for IPVS requests, used by one goroutine at a time.
//
// It exists for speed: moby/ipvs (still used for the rare timeout and flush requests) zeroes a
// 64 KiB receive array for every answer, builds each request from some 60 small objects and copies
// every dump into fresh buffers. Here one request buffer and one receive buffer are reused and
// answers are parsed in place. On the lab kernel (BenchmarkRealServerRequests) an add plus a
// delete of a real server took 376 us against moby's 854 us (6 allocations against 136), and the
// dump of 50 real servers 2.1 ms against 5.0 ms (8 KB allocated against 134 KB). A cold start at
// 10,000 Services sends some 165,000 such requests.
type genlConn struct {
	fd     int
	family uint16 // the IPVS family's generic netlink id
	seq    uint32
	w      attrWriter
	rbuf   []byte
}

// recvBufSize holds the largest datagram the kernel sends on a netlink socket: a dump fills an
// skb of at most 32 KiB, so 64 KiB leaves room; a truncated datagram is still detected.
const recvBufSize = 64 << 10

// recvTimeout bounds a wait for the kernel's answer, which always comes: it is a guard against a
// lost datagram (receive buffer overrun), not a timing assumption.
const recvTimeout = 60 * time.Second

// newGenlConn opens a socket in the calling thread's network namespace.
func newGenlConn(family uint16) (*genlConn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_GENERIC)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	tv := unix.NsecToTimeval(recvTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink socket timeout: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink bind: %w", err)
	}
	return &genlConn{fd: fd, family: family, seq: uint32(time.Now().UnixNano()), rbuf: make([]byte, recvBufSize)}, nil
}

func (c *genlConn) close() {
	if c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
}

// begin starts a request: the netlink and genl headers, lengths filled in by send.
func (c *genlConn) begin(cmd uint8) *attrWriter {
	c.w.b = c.w.b[:0]
	c.w.b = append(c.w.b, make([]byte, unix.NLMSG_HDRLEN)...)
	c.w.b = append(c.w.b, cmd, genlVersion, 0, 0)
	return &c.w
}

// do sends the request built since begin and reads its answer. A dump calls each with the
// attributes of every message until the end of the dump; any other request waits for its
// acknowledgement. A kernel error comes back as its syscall.Errno.
func (c *genlConn) do(dump bool, each func(attrs []byte) error) error {
	c.seq++
	flags := uint16(unix.NLM_F_REQUEST | unix.NLM_F_ACK)
	if dump {
		flags = unix.NLM_F_REQUEST | unix.NLM_F_DUMP
	}
	b := c.w.b
	binary.NativeEndian.PutUint32(b[0:], uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:], c.family)
	binary.NativeEndian.PutUint16(b[6:], flags)
	binary.NativeEndian.PutUint32(b[8:], c.seq)
	binary.NativeEndian.PutUint32(b[12:], 0)
	if err := unix.Sendto(c.fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink send: %w", err)
	}
	interrupted := false
	for {
		n, _, rflags, _, err := unix.Recvmsg(c.fd, c.rbuf, nil, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return fmt.Errorf("netlink receive: %w", err)
		}
		if rflags&unix.MSG_TRUNC != 0 {
			return fmt.Errorf("netlink receive: datagram larger than %d bytes", len(c.rbuf))
		}
		done, intr, err := c.walk(c.rbuf[:n], dump, each)
		interrupted = interrupted || intr
		if err != nil || done {
			if err == nil && interrupted {
				// The table changed during the dump: what was read may miss or repeat objects.
				err = errDumpInterrupted
			}
			return err
		}
	}
}

var errDumpInterrupted = errors.New("IPVS dump interrupted by a concurrent change")

// walk handles the messages of one datagram; done is true at the end of the answer.
func (c *genlConn) walk(b []byte, dump bool, each func([]byte) error) (done, interrupted bool, err error) {
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(binary.NativeEndian.Uint32(b))
		typ := binary.NativeEndian.Uint16(b[4:])
		flags := binary.NativeEndian.Uint16(b[6:])
		seq := binary.NativeEndian.Uint32(b[8:])
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return true, interrupted, fmt.Errorf("netlink: malformed message of %d bytes", l)
		}
		body := b[unix.NLMSG_HDRLEN:l]
		if next := (l + 3) &^ 3; next < len(b) {
			b = b[next:]
		} else {
			b = nil
		}
		if seq != c.seq {
			continue // the late answer of an earlier request that gave up
		}
		if flags&unix.NLM_F_DUMP_INTR != 0 {
			interrupted = true
		}
		switch typ {
		case unix.NLMSG_ERROR, unix.NLMSG_DONE:
			if len(body) < 4 {
				return true, interrupted, fmt.Errorf("netlink: short error message")
			}
			if e := int32(binary.NativeEndian.Uint32(body)); e != 0 {
				return true, interrupted, syscall.Errno(-e)
			}
			return true, interrupted, nil
		case c.family:
			if len(body) < genlHeaderLength {
				return true, interrupted, fmt.Errorf("netlink: short generic netlink message")
			}
			if each != nil {
				if err := each(body[genlHeaderLength:]); err != nil {
					return true, interrupted, err
				}
			}
			if !dump {
				continue // an answer before the acknowledgement
			}
		}
	}
	return false, interrupted, nil
}
