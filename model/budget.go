package model

import (
	"fmt"
	"sync"
)

// Budget is a process-wide count of bytes held by in-flight request bodies and
// image decodes. Admission is all or nothing and never waits: a request that
// does not fit is shed (HTTP 503 + Retry-After) instead of pushing the
// process past its container's memory limit.
type Budget struct {
	mu          sync.Mutex
	total, used int64
}

// DefaultMemoryBudget suits a 512 MB container: the model, ONNX Runtime's
// arenas and the Go runtime need the other half.
const DefaultMemoryBudget = 256 << 20

// NewBudget returns a budget of total bytes (total <= 0: DefaultMemoryBudget).
func NewBudget(total int64) *Budget {
	if total <= 0 {
		total = DefaultMemoryBudget
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

// Total and InUse are for errors, metrics and tests.
func (b *Budget) Total() int64 { return b.total }
func (b *Budget) InUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// fits refuses a request of n bytes that could never be admitted.
func (b *Budget) fits(n int64, what string) error {
	if n > b.total {
		return fmt.Errorf("%w: %s needs about %d MiB, over the %d MiB memory budget (MEMORY_BUDGET)",
			ErrImageTooLarge, what, n>>20, b.total>>20)
	}
	return nil
}

// reserve takes n bytes for one request, or fails with ErrImageTooLarge when n
// could never fit and ErrMemoryFull while other requests hold too much. Call
// the returned func to give the bytes back.
func (b *Budget) reserve(n int64, what string) (func(), error) {
	if err := b.fits(n, what); err != nil {
		return nil, err
	}
	if !b.TryAcquire(n) {
		return nil, ErrMemoryFull
	}
	return func() { b.Release(n) }, nil
}
