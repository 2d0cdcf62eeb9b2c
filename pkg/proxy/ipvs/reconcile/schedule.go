package reconcile

// The verification schedule: what a load reads, as a pure function of the period's number, why
// the load runs and how large the table is. The reads themselves are in load.go.

// RealServerWindows: a periodic verification reads the real servers of one virtual server in
// (at least) this many, so tampering with real servers is repaired within this many sync
// periods while a quiet node does not re-read every virtual server every period. The iptables
// chains and the sets' entry counts are verified every period, the virtual servers and
// addresses every TableWindows periods, the sets' entries every entryListPeriods periods.
const RealServerWindows = 8

// realServerListsPerPeriod bounds the real-server reads of one periodic verification: a node
// with more than RealServerWindows times this many virtual servers verifies them in more
// windows. One read is one netlink dump; without the bound a quiet node with thousands of
// Services spends most of its CPU listing real servers nobody has touched.
const realServerListsPerPeriod = 512

// RSWindows is the number of windows the real servers of n virtual servers are read in.
func RSWindows(n int) uint32 {
	return uint32(max(RealServerWindows, (n+realServerListsPerPeriod-1)/realServerListsPerPeriod))
}

// VirtualServersPerTableRead bounds how often a periodic verification reads the whole table:
// every virtual server, every kube-ipvs0 address, and a comparison of all of them with the
// cache. A node with up to this many virtual servers (in the kernel, both families) does so
// every period; a larger one every TableWindows periods, and in between reads only its window
// of real servers (a difference there reads the whole table at once), because the whole-table
// read is most of a large quiet node's CPU (docs/performance.md). The bound is a count, not a
// measured cost, so a node's repair time does not depend on how fast its CPU is.
const VirtualServersPerTableRead = 2048

// TableWindows is the number of periods between whole-table reads with n virtual servers.
func TableWindows(n int) uint32 {
	return uint32(max(1, (n+VirtualServersPerTableRead-1)/VirtualServersPerTableRead))
}

// entryListPeriods is the number of periods between listings of every ipset entry (in between,
// the sets' entry counts are compared): RealServerWindows on a node with up to
// VirtualServersPerTableRead virtual servers, proportionally more on a larger one, whose sets
// hold proportionally more entries and take proportionally longer to list. A listing only
// finds an entry swapped for another; anything added or removed changes a count and is listed
// and repaired at once.
func entryListPeriods(n int) uint32 { return RealServerWindows * TableWindows(n) }

// loadPlan is what one load reads.
type loadPlan struct {
	// period is the load's number; it picks the window of real servers read.
	period uint32
	// wholeTable reads every virtual server and kube-ipvs0 address. Otherwise the load first
	// reads the period's window of cached virtual servers' real servers, and reads the whole
	// table only when they differ from the cache.
	wholeTable bool
	// allRealServers reads the real servers of every virtual server (a load that is not a
	// periodic verification: the start, after a failure); otherwise of the period's window
	// and of virtual servers the cache does not know.
	allRealServers bool
	// listEntries lists every entry of our sets; otherwise their entry counts decide.
	listEntries bool
}

// planLoad plans the load numbered period: a reload (the start, after a failure) reads
// everything; a periodic verification of a node whose table holds tableSize virtual servers
// (as last known) reads the whole table every TableWindows periods and every set entry every
// entryListPeriods periods.
func planLoad(period uint32, reload bool, tableSize int) loadPlan {
	if reload {
		return loadPlan{period: period, wholeTable: true, allRealServers: true, listEntries: true}
	}
	return loadPlan{
		period:      period,
		wholeTable:  period%TableWindows(tableSize) == 0,
		listEntries: period%entryListPeriods(tableSize) == 0,
	}
}

// window is the window of real servers the plan reads in a table of n virtual servers, and
// how many windows there are.
func (p loadPlan) window(n int) (window, windows uint32) {
	windows = RSWindows(n)
	return p.period % windows, windows
}
