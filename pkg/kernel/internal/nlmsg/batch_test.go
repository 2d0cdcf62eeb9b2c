//go:build linux

package nlmsg

import (
	"errors"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestWalkAnswers(t *testing.T) {
	type refusal struct {
		i   int
		err error
	}
	for _, tc := range []struct {
		name     string
		datagram *datagram
		done     bool
		refused  []refusal
		malform  bool
	}{
		{
			name:     "only the last request's acknowledgement",
			datagram: (&datagram{}).msg(unix.NLMSG_ERROR, 0, 14, errBody(0)),
			done:     true,
		},
		{
			name: "refusals before the acknowledgement, a stale answer skipped",
			datagram: (&datagram{}).
				msg(unix.NLMSG_ERROR, 0, 9, errBody(-int32(syscall.EEXIST))).
				msg(unix.NLMSG_ERROR, 0, 10, errBody(-int32(syscall.EEXIST))).
				msg(unix.NLMSG_ERROR, 0, 12, errBody(-int32(syscall.ESRCH))).
				msg(unix.NLMSG_ERROR, 0, 14, errBody(0)),
			done:    true,
			refused: []refusal{{0, syscall.EEXIST}, {2, syscall.ESRCH}},
		},
		{
			name:     "the last request refused: its refusal ends the batch",
			datagram: (&datagram{}).msg(unix.NLMSG_ERROR, 0, 14, errBody(-int32(syscall.ENOENT))),
			done:     true,
			refused:  []refusal{{4, syscall.ENOENT}},
		},
		{
			name:     "a refusal, the acknowledgement still to come",
			datagram: (&datagram{}).msg(unix.NLMSG_ERROR, 0, 11, errBody(-int32(syscall.EEXIST))),
			refused:  []refusal{{1, syscall.EEXIST}},
		},
		{
			name:     "a short error message",
			datagram: (&datagram{}).msg(unix.NLMSG_ERROR, 0, 12, "x"),
			done:     true,
			malform:  true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []refusal
			done, err := walkAnswers(tc.datagram.b, 10, 14, func(i int, err error) { got = append(got, refusal{i, err}) })
			if done != tc.done || errors.Is(err, ErrMalformed) != tc.malform || (err != nil && !tc.malform) {
				t.Fatalf("done=%v err=%v, want done=%v malformed=%v", done, err, tc.done, tc.malform)
			}
			if len(got) != len(tc.refused) {
				t.Fatalf("refused %v, want %v", got, tc.refused)
			}
			for k := range got {
				if got[k].i != tc.refused[k].i || !errors.Is(got[k].err, tc.refused[k].err) {
					t.Errorf("refusal %d: %v, want %v", k, got[k], tc.refused[k])
				}
			}
		})
	}
}

// The sequence numbers wrap: a batch that spans the wrap still matches its answers.
func TestWalkAnswersAcrossTheWrap(t *testing.T) {
	first := ^uint32(0) - 1 // requests 0xfffffffe, 0xffffffff, 0, 1
	d := (&datagram{}).msg(unix.NLMSG_ERROR, 0, 0, errBody(-int32(syscall.EEXIST))).msg(unix.NLMSG_ERROR, 0, 1, errBody(0))
	var refused []int
	done, err := walkAnswers(d.b, first, 1, func(i int, _ error) { refused = append(refused, i) })
	if !done || err != nil || len(refused) != 1 || refused[0] != 2 {
		t.Errorf("done=%v err=%v refused=%v, want done, request 2 refused", done, err, refused)
	}
}
