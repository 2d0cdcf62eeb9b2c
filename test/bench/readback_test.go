package bench

import (
	"os"
	"testing"
	"time"
)

func TestOverlap(t *testing.T) {
	at := func(s float64) time.Time { return time.Unix(1000, 0).Add(time.Duration(s * float64(time.Second))) }
	reads := []interval{{at(1), at(2)}, {at(5), at(9)}, {at(10), at(10.5)}}
	for _, tc := range []struct {
		from, to, want float64
	}{
		{0, 20, 5.5},
		{1.5, 6, 1.5}, // the second half of the first, the first second of the second
		{2, 5, 0},     // between reads
		{9.5, 10.25, 0.25},
		{6, 3, 0}, // an empty window
	} {
		if got := overlap(reads, at(tc.from), at(tc.to)); got != time.Duration(tc.want*float64(time.Second)) {
			t.Errorf("overlap in [%v, %v) = %v, want %vs", tc.from, tc.to, got, tc.want)
		}
	}
}

func TestCPUSplit(t *testing.T) {
	t0 := time.Unix(1000, 0)
	samples := []cpuSample{
		{at: t0, proc: 100, user: 1000, system: 500, idle: 50, softirq: 10},
		{at: t0.Add(5 * time.Second), proc: 450, children: 20, user: 1300, system: 650, idle: 80, softirq: 30},
		{at: t0.Add(9 * time.Second), proc: 800, user: 1600, system: 800, idle: 100, softirq: 40},
	}
	got := cpuSplit(samples, t0.Add(6*time.Second)) // the last sample is after the figure
	want := "CPU in the first 5.0 s of the cold start: the proxier 3.5 s (its children 0.2 s); the guest user 3.0 s, system 1.5 s, irq 0.0 s, softirq 0.2 s, idle 0.3 s"
	if got != want {
		t.Errorf("cpuSplit:\n got %s\nwant %s", got, want)
	}
	if got := cpuSplit(samples[:1], t0); got != "no CPU samples" {
		t.Errorf("one sample: %s", got)
	}
	if s := takeCPUSample(os.Getpid()); s.user+s.system == 0 {
		t.Errorf("no CPU time read from /proc/stat: %+v", s)
	}
}
