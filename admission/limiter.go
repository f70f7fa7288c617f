package admission

import (
	"container/list"
	"context"
	"sync"
)

// Limiter admits requests weighted by their images while the images admitted
// stay within `slots`, and lets at most `queue` more requests wait, first
// come first served; anything beyond that is refused at once (ErrBusy).
// Strict FIFO: a heavy request at the head is not overtaken by light ones
// behind it, so it cannot starve.
type Limiter struct {
	mu        sync.Mutex
	slots     int
	maxWeight int
	queue     int
	used      int
	waiters   list.List // of *waiter, oldest first
}

type waiter struct {
	n     int
	ready chan struct{} // closed once the weight is granted
}

// NewLimiter returns a Limiter of slots images (at least 1), a queue of
// `queue` requests (at least 0), and requests weighing 1..maxWeight images
// (maxWeight is clamped to 1..slots; <= 0 means slots).
func NewLimiter(slots, queue, maxWeight int) *Limiter {
	slots = max(1, slots)
	if maxWeight <= 0 || maxWeight > slots {
		maxWeight = slots
	}
	return &Limiter{slots: slots, queue: max(0, queue), maxWeight: maxWeight}
}

// Acquire waits until weight (clamped to 1..maxWeight) fits, and returns the
// weight taken, to give back with Release. It fails fast with ErrBusy when
// the queue is full, and with ctx's error if the caller leaves while waiting.
func (l *Limiter) Acquire(ctx context.Context, weight int) (int, error) {
	n := min(max(1, weight), l.maxWeight)
	l.mu.Lock()
	if l.waiters.Len() == 0 && l.used+n <= l.slots {
		l.used += n
		l.mu.Unlock()
		return n, nil
	}
	if l.waiters.Len() >= l.queue {
		l.mu.Unlock()
		return 0, ErrBusy
	}
	w := &waiter{n: n, ready: make(chan struct{})}
	e := l.waiters.PushBack(w)
	l.mu.Unlock()

	select {
	case <-w.ready:
		return n, nil
	case <-ctx.Done():
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-w.ready: // granted while we were leaving: give it back
		l.used -= n
	default:
		l.waiters.Remove(e)
	}
	// Either way the head may fit now (we may have been the heavy head).
	l.grant()
	return 0, ctx.Err()
}

// Release gives back n, the weight Acquire returned.
func (l *Limiter) Release(n int) {
	l.mu.Lock()
	l.used -= n
	l.grant()
	l.mu.Unlock()
}

// grant admits waiters from the head while they fit. l.mu is held.
func (l *Limiter) grant() {
	for e := l.waiters.Front(); e != nil; e = l.waiters.Front() {
		w := e.Value.(*waiter)
		if l.used+w.n > l.slots {
			return
		}
		l.used += w.n
		l.waiters.Remove(e)
		close(w.ready)
	}
}

// InFlight is the weight admitted now, Waiting the requests queued; Slots
// and Queue are the limits. For gauges and tests.
func (l *Limiter) InFlight() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.used
}

func (l *Limiter) Waiting() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.waiters.Len()
}

func (l *Limiter) Slots() int { return l.slots }
func (l *Limiter) Queue() int { return l.queue }
