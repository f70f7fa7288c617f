// Package admission decides whether the service takes on more work right now,
// before that work can cost memory or time: a process-wide memory Budget (bytes
// of request bodies, decodes and input tensors in flight) and a Limiter of the
// images in the inference pipeline with a bounded wait queue. What does not fit
// is refused at once with ErrBusy or ErrMemoryFull (HTTP 503 + Retry-After),
// never queued without bound.
//
// main builds one Controller from the settings and hands it to the model
// (which sizes the limiter to the pipeline it builds, and reserves decode and
// tensor bytes) and to the HTTP layer (which reserves request bodies and
// reads the gauges). It imports nothing of the service.
package admission

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// The refusals. Both mean "not now": the client should retry after RetryAfter.
var (
	// ErrBusy: the pipeline is full and so is its wait queue; queueing
	// without bound would only grow latency and memory.
	ErrBusy = errors.New("server busy: inference queue is full")
	// ErrMemoryFull: other requests hold the memory budget right now.
	ErrMemoryFull = errors.New("server busy: the memory budget for uploads and decodes is in use")
)

// RetryAfter is the wait suggested with ErrBusy and ErrMemoryFull: the
// pipeline turns over in tens of milliseconds, so a second is ample.
const RetryAfter = time.Second

// Config holds the settings admission is built from.
type Config struct {
	MemoryBudget int64 // bytes, more than 0
	QueueSize    int   // requests allowed to wait; <= 0: twice the requests admitted at once
}

// Controller is the service's admission: one memory budget and one limiter.
type Controller struct {
	Budget  *Budget
	queue   int
	limiter atomic.Pointer[Limiter]
}

// New returns a Controller whose limiter is sized later, by Size.
func New(c Config) *Controller {
	return &Controller{Budget: NewBudget(c.MemoryBudget), queue: c.QueueSize}
}

// Size fits the limiter to the pipeline it guards: slots images in it at
// once, one request weighing at most maxWeight of them (what it can have in
// flight at a time). The model calls it once it knows its workers and batch
// size, before any request. It returns the queue length in use.
func (a *Controller) Size(slots, maxWeight int) (queue int) {
	queue = a.queue
	if queue <= 0 {
		queue = 2 * max(1, slots)
	}
	a.limiter.Store(NewLimiter(slots, queue, maxWeight))
	return queue
}

// Limiter is the limiter Size made (nil before), for gauges and tests.
func (a *Controller) Limiter() *Limiter { return a.limiter.Load() }

// Admit waits for room for a request of weight images (clamped to the
// limiter's range) from the client WithClient put in ctx, or fails with
// ErrBusy when the queue is full, or with ctx's error when the caller
// leaves first. Call release when done.
func (a *Controller) Admit(ctx context.Context, weight int) (release func(), err error) {
	l := a.limiter.Load()
	if l == nil {
		panic("admission: Admit before Size")
	}
	key := ClientOf(ctx)
	n, err := l.Acquire(ctx, key, weight)
	if err != nil {
		return nil, err
	}
	return func() { l.Release(key, n) }, nil
}

type clientKey struct{}

// maxClientKey bounds what a client's name costs to keep.
const maxClientKey = 128

// WithClient names who a request is from (an authenticated subject, else
// its address) for the limiter's fairness between clients.
func WithClient(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, clientKey{}, name[:min(len(name), maxClientKey)])
}

// ClientOf is the name WithClient gave, or "" (one anonymous client).
func ClientOf(ctx context.Context) string {
	s, _ := ctx.Value(clientKey{}).(string)
	return s
}

// Retry runs try again while it fails with ErrMemoryFull, up to 5 tries with
// waits of 10, 20, 40 and 80 ms: for one image of a many-image request,
// whose own other images often hold the memory it needs for a moment.
func Retry[T any](ctx context.Context, try func() (T, error)) (T, error) {
	wait := 10 * time.Millisecond
	for attempt := 1; ; attempt++ {
		v, err := try()
		if !errors.Is(err, ErrMemoryFull) || attempt == 5 {
			return v, err
		}
		select {
		case <-time.After(wait):
			wait *= 2
		case <-ctx.Done():
			var zero T
			return zero, ctx.Err()
		}
	}
}
