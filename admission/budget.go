package admission

import (
	"fmt"
	"sync"
)

// Budget is a process-wide count of bytes held by in-flight request bodies,
// image decodes and input tensors. Admission is all or nothing and never
// waits: a request that does not fit is shed (ErrMemoryFull, HTTP 503 +
// Retry-After) instead of pushing the process past its container's memory
// limit.
type Budget struct {
	mu          sync.Mutex
	total, used int64
}

// NewBudget returns a budget of total bytes. Its size is MEMORY_BUDGET's,
// whose default main declares; a budget of 0 would admit nothing.
func NewBudget(total int64) *Budget {
	if total <= 0 {
		panic(fmt.Sprintf("admission: a memory budget of %d bytes admits nothing", total))
	}
	return &Budget{total: total}
}

// TryAcquire takes n bytes if they are free now.
func (b *Budget) TryAcquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n > b.total-b.used {
		return false
	}
	b.used += n
	return true
}

// Release gives back n bytes taken by TryAcquire.
func (b *Budget) Release(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

// Fits says whether n bytes could ever be admitted (an empty budget).
func (b *Budget) Fits(n int64) bool { return n <= b.total }

// Reserve takes n bytes or fails with ErrMemoryFull; the func it returns
// gives them back.
func (b *Budget) Reserve(n int64) (release func(), err error) {
	if !b.TryAcquire(n) {
		return nil, ErrMemoryFull
	}
	return func() { b.Release(n) }, nil
}

// Total and InUse are for errors, gauges and tests.
func (b *Budget) Total() int64 { return b.total }
func (b *Budget) InUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// Reservation is one request's share of the budget that follows what it
// actually holds: it starts empty and grows as the request's data arrives,
// so a client that declares a large body and then stalls holds only what it
// sent, not what it announced.
type Reservation struct {
	b *Budget
	n int64
}

// Open starts an empty reservation; Close gives back whatever it then holds.
func (b *Budget) Open() *Reservation { return &Reservation{b: b} }

// Resize makes the reservation hold n bytes: growing takes the difference
// from the budget (ErrMemoryFull if it is not free now, the size unchanged),
// shrinking gives it back.
func (r *Reservation) Resize(n int64) error {
	switch d := n - r.n; {
	case d > 0:
		if !r.b.TryAcquire(d) {
			return ErrMemoryFull
		}
	case d < 0:
		r.b.Release(-d)
	}
	r.n = n
	return nil
}

// Size is what the reservation holds now.
func (r *Reservation) Size() int64 { return r.n }

// Close gives everything back; the reservation is empty afterwards.
func (r *Reservation) Close() { _ = r.Resize(0) }
