//go:build linux

package ipvs

import (
	"fmt"
	"time"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/internal/nlmsg"
)

// The IPVS-wide requests (include/uapi/linux/ip_vs.h): the connection timeouts are read with
// GET_CONFIG (answered with a SET_CONFIG message) and written with SET_CONFIG; FLUSH removes
// every virtual server. None carries a service or destination.
const (
	cmdSetConfig = 12
	cmdGetConfig = 13
	cmdFlush     = 17

	attrTimeoutTCP    = 4 // u32 seconds
	attrTimeoutTCPFin = 5 // u32 seconds
	attrTimeoutUDP    = 6 // u32 seconds
)

// timeouts are the kernel's IPVS connection timeouts.
type timeouts struct {
	tcp, tcpFin, udp time.Duration
}

// putTimeouts writes the SET_CONFIG attributes. The kernel keeps a timeout it is sent as 0, but
// SetTimeouts sends every one (merged with the current values) so the result never depends on
// that.
func putTimeouts(w *nlmsg.Writer, t timeouts) {
	w.U32(attrTimeoutTCP, seconds(t.tcp))
	w.U32(attrTimeoutTCPFin, seconds(t.tcpFin))
	w.U32(attrTimeoutUDP, seconds(t.udp))
}

func seconds(d time.Duration) uint32 {
	s := d / time.Second
	switch {
	case s < 0:
		return 0
	case s > 1<<32-1:
		return 1<<32 - 1
	}
	return uint32(s)
}

// parseTimeouts reads the attributes of a GET_CONFIG answer; a missing one is an error (every
// kernel with IPVS generic netlink sends all three).
func parseTimeouts(msg []byte) (timeouts, error) {
	var t timeouts
	seen := 0
	err := nlmsg.Attrs(msg, func(typ uint16, v []byte) error {
		var dst *time.Duration
		switch typ {
		case attrTimeoutTCP:
			dst = &t.tcp
		case attrTimeoutTCPFin:
			dst = &t.tcpFin
		case attrTimeoutUDP:
			dst = &t.udp
		default:
			return nil
		}
		s, err := nlmsg.U32(v)
		if err != nil {
			return err
		}
		*dst = time.Duration(s) * time.Second
		seen++
		return nil
	})
	if err == nil && seen != 3 {
		err = fmt.Errorf("%w: IPVS config with %d of the 3 timeouts", nlmsg.ErrMalformed, seen)
	}
	return t, err
}

// mergeTimeouts returns cur with each positive argument in place of its value.
func mergeTimeouts(cur timeouts, tcp, tcpFin, udp time.Duration) timeouts {
	if tcp > 0 {
		cur.tcp = tcp
	}
	if tcpFin > 0 {
		cur.tcpFin = tcpFin
	}
	if udp > 0 {
		cur.udp = udp
	}
	return cur
}

// getTimeouts reads the timeouts; the caller holds n.mu.
func (n *Netlink) getTimeouts() (timeouts, error) {
	var t timeouts
	got := false
	n.c.begin(cmdGetConfig)
	err := n.c.do(false, func(msg []byte) error {
		var err error
		t, err = parseTimeouts(msg)
		got = true
		return err
	})
	if err == nil && !got {
		err = fmt.Errorf("%w: no answer to GET_CONFIG", nlmsg.ErrMalformed)
	}
	return t, err
}
