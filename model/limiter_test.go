package model

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitFor polls cond for up to 2 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLimiterAdmitsAtMostN(t *testing.T) {
	l := NewLimiter(3, 100)
	var cur, peak atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Acquire(context.Background()); err != nil {
				t.Error(err)
				return
			}
			n := cur.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(2 * time.Millisecond)
			cur.Add(-1)
			l.Release()
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > 3 || p < 1 {
		t.Fatalf("peak concurrency %d, want 1..3", p)
	}
	if l.InFlight() != 0 || l.Waiting() != 0 {
		t.Fatalf("after all done: in flight %d, waiting %d", l.InFlight(), l.Waiting())
	}
}

func TestLimiterQueueFullIsBusyImmediately(t *testing.T) {
	l := NewLimiter(2, 1)
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if err := l.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
	}
	queued := make(chan error, 1)
	go func() { queued <- l.Acquire(ctx) }()
	waitFor(t, "one waiter", func() bool { return l.Waiting() == 1 })

	start := time.Now()
	if err := l.Acquire(ctx); !errors.Is(err, ErrBusy) {
		t.Fatalf("queue full: %v, want ErrBusy", err)
	}
	if d := time.Since(start); d > 5*time.Second { // generous: a loaded machine
		t.Errorf("ErrBusy took %v; it must not wait", d)
	}
	if l.Waiting() != 1 {
		t.Errorf("a refused call changed the waiting count to %d", l.Waiting())
	}
	l.Release()
	if err := <-queued; err != nil {
		t.Fatalf("queued acquire: %v", err)
	}
	if l.InFlight() != 2 || l.Waiting() != 0 {
		t.Fatalf("in flight %d waiting %d, want 2 and 0", l.InFlight(), l.Waiting())
	}
	l.Release()
	l.Release()
}

func TestLimiterCancelWhileWaiting(t *testing.T) {
	l := NewLimiter(1, 1)
	if err := l.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Acquire(ctx) }()
	waitFor(t, "the waiter", func() bool { return l.Waiting() == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v, want context.Canceled", err)
	}
	if l.Waiting() != 0 {
		t.Fatalf("waiting count %d after cancel, want 0", l.Waiting())
	}
	// The freed queue place is usable again.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	if err := l.Acquire(ctx2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second waiter: %v, want DeadlineExceeded (queued, then timed out), not ErrBusy", err)
	}
	l.Release()
	if err := l.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	l.Release()
}

func TestLimiterDefaults(t *testing.T) {
	l := NewLimiter(0, -5) // at least one slot, no queue
	if err := l.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := l.Acquire(context.Background()); !errors.Is(err, ErrBusy) {
		t.Fatalf("no queue: %v, want ErrBusy", err)
	}
	l.Release()
}
