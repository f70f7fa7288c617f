package model

import (
	"context"
	"sync/atomic"
)

// Limiter admits at most `slots` concurrent jobs and lets at most `queue` more
// wait for a slot; anything beyond that is refused at once.
type Limiter struct {
	sem     chan struct{}
	waiting atomic.Int64
	queue   int64
}

func NewLimiter(slots, queue int) *Limiter {
	return &Limiter{sem: make(chan struct{}, max(1, slots)), queue: int64(max(0, queue))}
}

// Acquire waits for a slot; it fails fast with ErrBusy when the queue is full
// and gives up with ctx.Err() if the client goes away while waiting.
func (l *Limiter) Acquire(ctx context.Context) error {
	select {
	case l.sem <- struct{}{}:
		return nil
	default:
	}
	if l.waiting.Add(1) > l.queue {
		l.waiting.Add(-1)
		return ErrBusy
	}
	defer l.waiting.Add(-1)
	select {
	case l.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *Limiter) Release() { <-l.sem }

// InFlight and Waiting are for metrics and tests.
func (l *Limiter) InFlight() int { return len(l.sem) }
func (l *Limiter) Waiting() int  { return int(l.waiting.Load()) }
