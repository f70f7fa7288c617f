package admission

import (
	"container/list"
	"context"
	"sync"
)

// Limiter admits requests weighted by their images while the images admitted
// stay within `slots`, and lets at most `queue` more requests wait; anything
// beyond that is refused at once (ErrBusy).
//
// Waiting requests are served fairly between clients (the key Acquire is
// given): when room frees up, the next request admitted is the oldest one of
// the client with the least weight in flight, and while several clients are
// present none is given more than its share of the slots. A client with nothing running
// gets in ahead of one that already holds half the pipeline, so one heavy
// client cannot make everyone else wait behind its queue. The chosen request
// is never overtaken: if it does not fit yet, nothing is admitted until it
// does, so a heavy request cannot starve either. With one client (or none
// named) this is plain first come, first served.
type Limiter struct {
	mu        sync.Mutex
	slots     int
	maxWeight int
	queue     int
	used      int
	waiting   int
	seq       uint64
	// clients with weight in flight or requests waiting; entries go when
	// both are zero, so there are at most slots + queue of them.
	clients map[string]*client
}

type client struct {
	inFlight int
	waiters  list.List // of *waiter, oldest first
}

type waiter struct {
	n     int
	seq   uint64        // arrival order, across clients
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
	return &Limiter{slots: slots, queue: max(0, queue), maxWeight: maxWeight, clients: map[string]*client{}}
}

// Acquire waits until a request of weight images (clamped to 1..maxWeight)
// from client key is admitted, and returns the weight taken, to give back
// with Release. It fails fast with ErrBusy when the queue is full, and with
// ctx's error if the caller leaves while waiting.
func (l *Limiter) Acquire(ctx context.Context, key string, weight int) (int, error) {
	n := min(max(1, weight), l.maxWeight)
	l.mu.Lock()
	if l.waiting == 0 && l.used+n <= l.slots && l.withinShare(key, n) {
		l.take(key, n)
		l.mu.Unlock()
		return n, nil
	}
	if l.waiting >= l.queue {
		l.mu.Unlock()
		return 0, ErrBusy
	}
	cl := l.client(key)
	l.seq++
	w := &waiter{n: n, seq: l.seq, ready: make(chan struct{})}
	e := cl.waiters.PushBack(w)
	l.waiting++
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
		l.give(key, n)
	default:
		cl.waiters.Remove(e)
		l.waiting--
		l.forget(key, cl)
	}
	// Either way the next choice may fit now (we may have been it).
	l.grant()
	return 0, ctx.Err()
}

// Release gives back n, the weight Acquire returned for key.
func (l *Limiter) Release(key string, n int) {
	l.mu.Lock()
	l.give(key, n)
	l.grant()
	l.mu.Unlock()
}

// The helpers below run with l.mu held.

func (l *Limiter) client(key string) *client {
	cl := l.clients[key]
	if cl == nil {
		cl = &client{}
		l.clients[key] = cl
	}
	return cl
}

func (l *Limiter) forget(key string, cl *client) {
	if cl.inFlight == 0 && cl.waiters.Len() == 0 {
		delete(l.clients, key)
	}
}

func (l *Limiter) take(key string, n int) {
	l.used += n
	l.client(key).inFlight += n
}

func (l *Limiter) give(key string, n int) {
	l.used -= n
	if cl := l.clients[key]; cl != nil {
		cl.inFlight -= n
		l.forget(key, cl)
	}
}

// grant admits waiters while the next one, by the fairness rule, fits.
// While several clients are present (running or waiting), a client that
// already has weight in flight gets more only within its share of the
// slots (slots ÷ clients): otherwise a heavy client refills the pipeline
// each time it drains, and a light client's one image, once admitted, still
// waits behind all of the heavy client's images for the CPU.
func (l *Limiter) grant() {
	for l.waiting > 0 {
		var key string
		var next *client
		for k, cl := range l.clients {
			if cl.waiters.Len() == 0 || !l.withinShare(k, head(cl).n) {
				continue
			}
			if next == nil || cl.inFlight < next.inFlight ||
				(cl.inFlight == next.inFlight && head(cl).seq < head(next).seq) {
				key, next = k, cl
			}
		}
		if next == nil {
			return // every waiting client is at its share: wait for releases
		}
		w := head(next)
		if l.used+w.n > l.slots {
			return
		}
		next.waiters.Remove(next.waiters.Front())
		l.waiting--
		l.take(key, w.n)
		close(w.ready)
	}
}

func head(cl *client) *waiter { return cl.waiters.Front().Value.(*waiter) }

// withinShare: may client key take n more now? Always when it has nothing
// in flight (so nobody starves) or is the only client present; otherwise
// only within slots ÷ the clients present, itself included.
func (l *Limiter) withinShare(key string, n int) bool {
	cl := l.clients[key]
	if cl == nil || cl.inFlight == 0 {
		return true
	}
	present := len(l.clients)
	return present <= 1 || cl.inFlight+n <= l.slots/present
}

// InFlight is the weight admitted now, Waiting the requests queued. For
// gauges and tests.
func (l *Limiter) InFlight() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.used
}

func (l *Limiter) Waiting() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.waiting
}
