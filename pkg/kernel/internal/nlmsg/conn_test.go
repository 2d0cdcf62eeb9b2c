//go:build linux

package nlmsg

import (
	"encoding/binary"
	"errors"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// datagram builds netlink messages as the kernel sends them.
type datagram struct{ b []byte }

func (d *datagram) msg(typ, flags uint16, seq uint32, body string) *datagram {
	l := unix.NLMSG_HDRLEN + len(body)
	d.b = binary.NativeEndian.AppendUint32(d.b, uint32(l))
	d.b = binary.NativeEndian.AppendUint16(d.b, typ)
	d.b = binary.NativeEndian.AppendUint16(d.b, flags)
	d.b = binary.NativeEndian.AppendUint32(d.b, seq)
	d.b = binary.NativeEndian.AppendUint32(d.b, 1234)
	d.b = append(d.b, body...)
	for len(d.b)%4 != 0 {
		d.b = append(d.b, 0)
	}
	return d
}

func errBody(errno int32) string { return string(binary.NativeEndian.AppendUint32(nil, uint32(errno))) }

func TestWalk(t *testing.T) {
	const typ = 0x20
	c := &Conn{seq: 7}
	var got []string
	collect := func(ty uint16, body []byte) error {
		if ty != typ {
			t.Errorf("message type %d", ty)
		}
		got = append(got, string(body))
		return nil
	}

	// A dump over two datagrams; a stale answer of request 6 is skipped.
	d1 := (&datagram{}).msg(typ, unix.NLM_F_MULTI, 6, "old").msg(typ, unix.NLM_F_MULTI, 7, "a1")
	done, intr, err := c.walk(d1.b, collect)
	if done || intr || err != nil {
		t.Fatalf("first datagram: done=%v interrupted=%v err=%v", done, intr, err)
	}
	d2 := (&datagram{}).msg(typ, unix.NLM_F_MULTI|unix.NLM_F_DUMP_INTR, 7, "b2").msg(unix.NLMSG_DONE, unix.NLM_F_MULTI, 7, errBody(0))
	done, intr, err = c.walk(d2.b, collect)
	if !done || !intr || err != nil {
		t.Fatalf("second datagram: done=%v interrupted=%v err=%v", done, intr, err)
	}
	if len(got) != 2 || got[0] != "a1" || got[1] != "b2" {
		t.Errorf("dump messages %q", got)
	}

	// Acknowledgements: 0 is success, a negative errno is that error.
	ack := (&datagram{}).msg(unix.NLMSG_ERROR, 0, 7, errBody(0))
	if done, _, err := c.walk(ack.b, nil); !done || err != nil {
		t.Errorf("ack: done=%v err=%v", done, err)
	}
	nack := (&datagram{}).msg(unix.NLMSG_ERROR, 0, 7, errBody(-int32(syscall.EEXIST)))
	if _, _, err := c.walk(nack.b, nil); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("error answer: %v, want EEXIST", err)
	}
	dumpErr := (&datagram{}).msg(unix.NLMSG_DONE, unix.NLM_F_MULTI, 7, errBody(-int32(syscall.EINVAL)))
	if _, _, err := c.walk(dumpErr.b, collect); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("dump ending in an error: %v, want EINVAL", err)
	}
	bad := (&datagram{}).msg(typ, 0, 7, "x")
	binary.NativeEndian.PutUint32(bad.b, uint32(len(bad.b)+4))
	if _, _, err := c.walk(bad.b, collect); !errors.Is(err, ErrMalformed) {
		t.Errorf("message longer than its datagram: %v", err)
	}
	stop := errors.New("stop")
	if _, _, err := c.walk((&datagram{}).msg(typ, unix.NLM_F_MULTI, 7, "z").b, func(uint16, []byte) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("callback error: %v", err)
	}
}

func TestRetryInterrupted(t *testing.T) {
	other := errors.New("other")
	for _, tc := range []struct {
		name     string
		results  []error // what each call returns; the last repeats
		want     error
		wantRuns int
	}{
		{"first read is whole", []error{nil}, nil, 1},
		{"interrupted once", []error{ErrDumpInterrupted, nil}, nil, 2},
		{"another error is not retried", []error{other}, other, 1},
		{"interrupted every time", []error{ErrDumpInterrupted}, ErrDumpInterrupted, 3},
	} {
		runs := 0
		err := RetryInterrupted(3, func() error {
			r := tc.results[min(runs, len(tc.results)-1)]
			runs++
			return r
		})
		if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) || runs != tc.wantRuns {
			t.Errorf("%s: %v after %d runs, want %v after %d", tc.name, err, runs, tc.want, tc.wantRuns)
		}
	}
}
