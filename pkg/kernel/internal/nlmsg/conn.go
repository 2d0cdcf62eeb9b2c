//go:build linux

package nlmsg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Conn is a netlink socket used by one request at a time (the caller serializes).
//
// It exists for speed: vishvananda/netlink's socket (under moby/ipvs and netlink.AddrList) zeroes
// a 64 KiB receive array for every answer and copies every datagram, and its users build each
// request from many small objects and parse each answer into more. Here one request buffer and
// one receive buffer are reused and answers are handed to the caller in place.
// BenchmarkRealServerRequests (pkg/kernel/ipvs) compares it with moby/ipvs, and
// BenchmarkNetlinkStacks (pkg/kernel/ipvs, pkg/kernel/netdev) with mdlayher/netlink, the stack
// knftables brings into the binary.
type Conn struct {
	fd     int
	seq    uint32
	w      Writer
	rbuf   []byte
	starts []int // where each request of a batch starts in w.B (batch.go)
}

// recvBufSize holds the largest datagram the kernel sends on a netlink socket: a dump fills an
// skb of at most 32 KiB, so 64 KiB leaves room; a truncated datagram is still detected.
const recvBufSize = 64 << 10

// recvTimeout bounds a wait for the kernel's answer, which always comes: it is a guard against a
// lost datagram, not a timing assumption.
const recvTimeout = 60 * time.Second

// ErrDumpInterrupted: the kernel flagged the dump as interrupted (the objects changed while it
// was read): what was read may miss or repeat some. Read it again.
var ErrDumpInterrupted = errors.New("netlink dump interrupted by a concurrent change")

// RetryInterrupted runs dump until it ends in anything but ErrDumpInterrupted, at most attempts
// times in all, and returns its last error. dump must start its result afresh on every call.
func RetryInterrupted(attempts int, dump func() error) error {
	var err error
	for range attempts {
		if err = dump(); !errors.Is(err, ErrDumpInterrupted) {
			return err
		}
	}
	return err
}

// Open opens a socket of the netlink protocol proto in the calling thread's network namespace.
func Open(proto int) (*Conn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
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
	return &Conn{fd: fd, seq: uint32(time.Now().UnixNano()), rbuf: make([]byte, recvBufSize)}, nil
}

// Close releases the socket.
func (c *Conn) Close() {
	if c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
}

// Begin starts a request: the returned writer holds room for the netlink header (filled in by
// Do); append the body to it.
func (c *Conn) Begin() *Writer {
	c.w.B = append(c.w.B[:0], make([]byte, unix.NLMSG_HDRLEN)...)
	return &c.w
}

// Do sends the request built since Begin as a message of type typ and reads its answer. A dump
// calls each with every answering message's type and body until the end of the dump; any other
// request waits for its acknowledgement. A kernel error comes back as its syscall.Errno; an
// interrupted dump, once read to its end, as ErrDumpInterrupted.
func (c *Conn) Do(typ uint16, dump bool, each func(typ uint16, body []byte) error) error {
	c.seq++
	flags := uint16(unix.NLM_F_REQUEST | unix.NLM_F_ACK)
	if dump {
		flags = unix.NLM_F_REQUEST | unix.NLM_F_DUMP
	}
	putHeader(c.w.B, len(c.w.B), typ, flags, c.seq)
	if err := c.send(); err != nil {
		return err
	}
	interrupted := false
	for {
		d, err := c.recv()
		if err != nil {
			return err
		}
		done, intr, err := c.walk(d, each)
		interrupted = interrupted || intr
		if err != nil || done {
			if err == nil && interrupted {
				err = ErrDumpInterrupted
			}
			return err
		}
	}
}

// putHeader fills in the netlink header at the start of b for a message of length l.
func putHeader(b []byte, l int, typ, flags uint16, seq uint32) {
	binary.NativeEndian.PutUint32(b[0:], uint32(l))
	binary.NativeEndian.PutUint16(b[4:], typ)
	binary.NativeEndian.PutUint16(b[6:], flags)
	binary.NativeEndian.PutUint32(b[8:], seq)
	binary.NativeEndian.PutUint32(b[12:], 0)
}

// send sends the request buffer to the kernel as one datagram.
func (c *Conn) send() error {
	if err := unix.Sendto(c.fd, c.w.B, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink send: %w", err)
	}
	return nil
}

// recv reads the next datagram into the receive buffer and returns it (valid until the next).
func (c *Conn) recv() ([]byte, error) {
	for {
		n, _, rflags, _, err := unix.Recvmsg(c.fd, c.rbuf, nil, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("netlink receive: %w", err)
		}
		if rflags&unix.MSG_TRUNC != 0 {
			return nil, fmt.Errorf("netlink receive: datagram larger than %d bytes", len(c.rbuf))
		}
		return c.rbuf[:n], nil
	}
}

// walk handles the messages of one datagram; done is true at the end of the answer.
func (c *Conn) walk(b []byte, each func(uint16, []byte) error) (done, interrupted bool, err error) {
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(binary.NativeEndian.Uint32(b))
		typ := binary.NativeEndian.Uint16(b[4:])
		flags := binary.NativeEndian.Uint16(b[6:])
		seq := binary.NativeEndian.Uint32(b[8:])
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return true, interrupted, fmt.Errorf("%w: message of %d bytes in %d", ErrMalformed, l, len(b))
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
				return true, interrupted, fmt.Errorf("%w: short error message", ErrMalformed)
			}
			if e := int32(binary.NativeEndian.Uint32(body)); e != 0 {
				return true, interrupted, syscall.Errno(-e)
			}
			return true, interrupted, nil
		case unix.NLMSG_NOOP, unix.NLMSG_OVERRUN:
		default:
			if each != nil {
				if err := each(typ, body); err != nil {
					return true, interrupted, err
				}
			}
		}
	}
	return false, interrupted, nil
}
