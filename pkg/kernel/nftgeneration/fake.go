package nftgeneration

import "sync"

// Fake is a generation a test advances where the kernel would: on every change to the rules it
// stands for (Bump). Err, when set, is returned by every read, as on a kernel without nf_tables.
type Fake struct {
	mu    sync.Mutex
	gen   uint32
	err   error
	reads int
}

var _ Reader = &Fake{}

// NewFake returns a Fake at generation 1.
func NewFake() *Fake { return &Fake{gen: 1} }

func (f *Fake) Generation() (uint32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	return f.gen, f.err
}

// Bump records a committed change.
func (f *Fake) Bump() {
	f.mu.Lock()
	f.gen++
	f.mu.Unlock()
}

// SetErr makes every later read fail with err (nil: succeed again).
func (f *Fake) SetErr(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

// Reads returns the number of Generation calls.
func (f *Fake) Reads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}
