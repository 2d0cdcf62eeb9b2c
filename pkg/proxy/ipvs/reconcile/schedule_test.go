package reconcile

import "testing"

// TestPlanLoad: the verification schedule, period by period.
func TestPlanLoad(t *testing.T) {
	small, large, huge := 100, VirtualServersPerTableRead+1, 4*VirtualServersPerTableRead
	for _, tc := range []struct {
		name      string
		period    uint32
		reload    bool
		tableSize int
		want      loadPlan
	}{
		{"a reload reads everything", 3, true, huge, loadPlan{period: 3, wholeTable: true, allRealServers: true, listEntries: true}},
		{"a small node reads its whole table every period", 3, false, small, loadPlan{period: 3, wholeTable: true}},
		{"and lists every entry every 8th period", 8, false, small, loadPlan{period: 8, wholeTable: true, listEntries: true}},
		{"a larger node reads its whole table every 2nd period", 3, false, large, loadPlan{period: 3}},
		{"period 2 of 2", 2, false, large, loadPlan{period: 2, wholeTable: true}},
		{"and lists every entry every 16th", 16, false, large, loadPlan{period: 16, wholeTable: true, listEntries: true}},
		{"not every 8th", 8, false, large, loadPlan{period: 8, wholeTable: true}},
		{"four times the bound: every 4th period", 6, false, huge, loadPlan{period: 6}},
		{"every 32nd period lists", 32, false, huge, loadPlan{period: 32, wholeTable: true, listEntries: true}},
		{"period 0 of a fresh node", 0, false, 0, loadPlan{period: 0, wholeTable: true, listEntries: true}},
	} {
		if got := planLoad(tc.period, tc.reload, tc.tableSize); got != tc.want {
			t.Errorf("%s: planLoad(%d, %v, %d) = %+v, want %+v", tc.name, tc.period, tc.reload, tc.tableSize, got, tc.want)
		}
	}
}

// TestLoadPlanWindow: the window of real servers follows the period over the table's windows.
func TestLoadPlanWindow(t *testing.T) {
	for _, tc := range []struct {
		period     uint32
		n          int
		window, of uint32
	}{
		{0, 10, 0, RealServerWindows},
		{9, 10, 1, RealServerWindows},
		{31, 15000, 1, 30},
	} {
		w, of := loadPlan{period: tc.period}.window(tc.n)
		if w != tc.window || of != tc.of {
			t.Errorf("period %d of %d virtual servers: window %d of %d, want %d of %d", tc.period, tc.n, w, of, tc.window, tc.of)
		}
	}
}

func TestTableWindows(t *testing.T) {
	for n, want := range map[int]uint32{0: 1, 1: 1, 2048: 1, 2049: 2, 15000: 8} {
		if got := TableWindows(n); got != want {
			t.Errorf("TableWindows(%d) = %d, want %d", n, got, want)
		}
		if got := entryListPeriods(n); got != 8*want {
			t.Errorf("entryListPeriods(%d) = %d, want %d", n, got, 8*want)
		}
	}
}

func TestRealServerWindows(t *testing.T) {
	for n, want := range map[int]uint32{0: 8, 300: 8, 4096: 8, 4097: 9, 15000: 30} {
		if got := RSWindows(n); got != want {
			t.Errorf("RSWindows(%d) = %d, want %d", n, got, want)
		}
		if lists := (n + int(want) - 1) / int(want); n > 8*realServerListsPerPeriod && lists > realServerListsPerPeriod {
			t.Errorf("%d virtual servers in %d windows: %d reads per period", n, want, lists)
		}
	}
}
