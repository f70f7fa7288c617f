package admission

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"catsdogs/tests/poll"
)

func acquire(t *testing.T, l *Limiter, w int) int {
	t.Helper()
	n, err := l.Acquire(context.Background(), "", w)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestLimiterAdmitsAtMostSlots(t *testing.T) {
	l := NewLimiter(5, 100, 3)
	var cur, peak atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := l.Acquire(context.Background(), "", 1+i%3)
			if err != nil {
				t.Error(err)
				return
			}
			c := cur.Add(int64(n))
			for p := peak.Load(); c > p && !peak.CompareAndSwap(p, c); p = peak.Load() {
			}
			time.Sleep(time.Millisecond)
			cur.Add(-int64(n))
			l.Release("", n)
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > 5 || p < 1 {
		t.Fatalf("peak weight in flight %d, want 1..5", p)
	}
	if l.InFlight() != 0 || l.Waiting() != 0 {
		t.Fatalf("after all done: in flight %d, waiting %d", l.InFlight(), l.Waiting())
	}
}

func TestLimiterClampsWeight(t *testing.T) {
	l := NewLimiter(8, 0, 3)
	if n := acquire(t, l, 32); n != 3 {
		t.Fatalf("weight 32 took %d, want maxWeight 3", n)
	}
	if n := acquire(t, l, 0); n != 1 {
		t.Fatalf("weight 0 took %d, want 1", n)
	}
	if NewLimiter(4, 0, 0).maxWeight != 4 || NewLimiter(4, 0, 9).maxWeight != 4 {
		t.Error("maxWeight not clamped to 1..slots")
	}
}

// A heavy request at the head of the queue is served before lighter ones of
// the same client that came after it, even though they would fit earlier:
// it cannot be starved.
func TestLimiterFIFONoStarvation(t *testing.T) {
	l := NewLimiter(4, 10, 4)
	held := acquire(t, l, 3) // 1 slot free
	order := make(chan string, 2)
	go func() {
		n := acquire(t, l, 4)
		order <- "heavy"
		l.Release("", n)
	}()
	poll.Until(t, "the heavy waiter", func() bool { return l.Waiting() == 1 })
	go func() {
		n := acquire(t, l, 1) // would fit now, but must queue behind the heavy one
		order <- "light"
		l.Release("", n)
	}()
	poll.Until(t, "the light waiter", func() bool { return l.Waiting() == 2 })
	if l.InFlight() != 3 {
		t.Fatalf("the light request overtook the heavy one: in flight %d", l.InFlight())
	}
	l.Release("", held)
	if first := <-order; first != "heavy" {
		t.Fatalf("%s served first, want heavy", first)
	}
	<-order
	poll.Until(t, "everything released", func() bool { return l.InFlight() == 0 })
}

// Between clients, the one with the least in flight goes first: a client
// with nothing running is admitted at the next release, ahead of another
// client's older queued requests, and an idle client's map entry goes away.
func TestLimiterFairBetweenClients(t *testing.T) {
	l := NewLimiter(4, 10, 4)
	ctx := context.Background()
	heavy := make([]int, 0, 4)
	for range 4 {
		n, _ := l.Acquire(ctx, "heavy", 1)
		heavy = append(heavy, n)
	}
	order := make(chan string, 4)
	for range 3 { // the heavy client queues three more
		go func() {
			n, _ := l.Acquire(ctx, "heavy", 1)
			order <- "heavy"
			_ = n
		}()
	}
	poll.Until(t, "the heavy client's queue", func() bool { return l.Waiting() == 3 })
	go func() {
		n, _ := l.Acquire(ctx, "light", 1)
		order <- "light"
		l.Release("light", n)
	}()
	poll.Until(t, "the light client waiting", func() bool { return l.Waiting() == 4 })
	l.Release("heavy", heavy[0]) // one slot frees
	if first := <-order; first != "light" {
		t.Fatalf("%s admitted first; the light client (nothing in flight) should be", first)
	}
	// The light request released its slot at once: a queued heavy one follows.
	if next := <-order; next != "heavy" {
		t.Fatalf("then %s", next)
	}
	for _, n := range heavy[1:] {
		l.Release("heavy", n)
	}
	for range 2 {
		<-order
	}
	for range 3 {
		l.Release("heavy", 1)
	}
	if l.InFlight() != 0 || l.Waiting() != 0 || len(l.clients) != 0 {
		t.Fatalf("after all: in flight %d, waiting %d, %d clients remembered", l.InFlight(), l.Waiting(), len(l.clients))
	}
}

func TestLimiterQueueFullIsBusyImmediately(t *testing.T) {
	l := NewLimiter(2, 1, 1)
	acquire(t, l, 1)
	acquire(t, l, 1)
	queued := make(chan error, 1)
	go func() { _, err := l.Acquire(context.Background(), "", 1); queued <- err }()
	poll.Until(t, "one waiter", func() bool { return l.Waiting() == 1 })

	if _, err := l.Acquire(context.Background(), "", 1); !errors.Is(err, ErrBusy) {
		t.Fatalf("queue full: %v, want ErrBusy", err)
	}
	if l.Waiting() != 1 {
		t.Errorf("a refused call changed the waiting count to %d", l.Waiting())
	}
	l.Release("", 1)
	if err := <-queued; err != nil {
		t.Fatalf("queued acquire: %v", err)
	}
	if l.InFlight() != 2 || l.Waiting() != 0 {
		t.Fatalf("in flight %d waiting %d, want 2 and 0", l.InFlight(), l.Waiting())
	}
}

func TestLimiterCancelWhileWaiting(t *testing.T) {
	l := NewLimiter(2, 2, 2)
	acquire(t, l, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := l.Acquire(ctx, "", 2); done <- err }() // a heavy head that does not fit
	poll.Until(t, "the heavy waiter", func() bool { return l.Waiting() == 1 })
	light := make(chan error, 1)
	go func() { _, err := l.Acquire(context.Background(), "", 1); light <- err }() // behind it
	poll.Until(t, "the light waiter", func() bool { return l.Waiting() == 2 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v, want context.Canceled", err)
	}
	// The head left: the light request behind it fits and must be let in.
	if err := <-light; err != nil {
		t.Fatalf("light waiter after the head left: %v", err)
	}
	if l.Waiting() != 0 || l.InFlight() != 2 {
		t.Fatalf("waiting %d, in flight %d; want 0 and 2", l.Waiting(), l.InFlight())
	}
}

func TestLimiterDefaults(t *testing.T) {
	l := NewLimiter(0, -5, 0) // at least one slot, no queue
	acquire(t, l, 1)
	if _, err := l.Acquire(context.Background(), "", 1); !errors.Is(err, ErrBusy) {
		t.Fatalf("no queue: %v, want ErrBusy", err)
	}
}

func TestClientKeyBounded(t *testing.T) {
	long := strings.Repeat("k", 10_000)
	if got := ClientOf(WithClient(context.Background(), long)); len(got) != maxClientKey {
		t.Errorf("client key of %d bytes kept, want at most %d", len(got), maxClientKey)
	}
	if ClientOf(context.Background()) != "" {
		t.Error("no client named: want the anonymous key")
	}
}

func TestControllerSizeAndAdmit(t *testing.T) {
	a := New(Config{MemoryBudget: 1 << 20})
	if q := a.Size(6, 4); q != 12 || a.Limiter().slots != 6 {
		t.Fatalf("queue %d slots %d, want the default 2 x 6 and 6", q, a.Limiter().slots)
	}
	if a.Budget.Total() != 1<<20 {
		t.Errorf("budget %d, want 1 MiB", a.Budget.Total())
	}
	release, err := a.Admit(context.Background(), 32)
	if err != nil {
		t.Fatal(err)
	}
	if a.Limiter().InFlight() != 4 {
		t.Errorf("a 32-image request holds %d, want its max weight 4", a.Limiter().InFlight())
	}
	release()
	if a.Limiter().InFlight() != 0 {
		t.Error("release did not give the weight back")
	}
	if q := New(Config{MemoryBudget: 1 << 20, QueueSize: 3}).Size(6, 1); q != 3 {
		t.Errorf("queue %d, want the configured 3", q)
	}
}

func TestRetry(t *testing.T) {
	tries := 0
	v, err := Retry(context.Background(), func() (int, error) {
		tries++
		if tries < 3 {
			return 0, ErrMemoryFull
		}
		return 7, nil
	})
	if v != 7 || err != nil || tries != 3 {
		t.Fatalf("got %d, %v after %d tries", v, err, tries)
	}
	tries = 0
	if _, err := Retry(context.Background(), func() (int, error) { tries++; return 0, ErrMemoryFull }); !errors.Is(err, ErrMemoryFull) || tries != 5 {
		t.Fatalf("always full: %v after %d tries, want ErrMemoryFull after 5", err, tries)
	}
	tries = 0
	other := errors.New("other")
	if _, err := Retry(context.Background(), func() (int, error) { tries++; return 0, other }); err != other || tries != 1 {
		t.Fatalf("other error: %v after %d tries, want it at once", err, tries)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Retry(ctx, func() (int, error) { return 0, ErrMemoryFull }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

// While another client is present, a client with weight in flight is held to
// its share of the slots even when there is room: the heavy client cannot
// refill the pipeline around a light client's image. Alone, it may use all.
func TestLimiterShareWhileOthersPresent(t *testing.T) {
	l := NewLimiter(8, 10, 4)
	ctx := context.Background()
	h1, _ := l.Acquire(ctx, "heavy", 4) // alone: takes what it likes
	light, _ := l.Acquire(ctx, "light", 1)
	got := make(chan int, 1)
	go func() { n, _ := l.Acquire(ctx, "heavy", 4); got <- n }() // 4 + 4 > 8/2 with light present
	poll.Until(t, "the heavy request to wait", func() bool { return l.Waiting() == 1 })
	if l.InFlight() != 5 {
		t.Fatalf("in flight %d: the heavy client went past its share while another was present", l.InFlight())
	}
	l.Release("light", light) // alone again: it may use the room
	n := <-got
	if l.InFlight() != 8 {
		t.Fatalf("in flight %d after the light client left, want 8", l.InFlight())
	}
	l.Release("heavy", h1)
	l.Release("heavy", n)
}

// The share holds on the fast path too: with a light client running and
// nobody waiting, a heavy client still gets no more than its share, though
// there is room. (Before, only queued requests were held to it, and a heavy
// client arriving at a quiet moment refilled the pipeline.)
func TestLimiterShareOnTheFastPath(t *testing.T) {
	l := NewLimiter(8, 10, 4)
	ctx := context.Background()
	light, _ := l.Acquire(ctx, "light", 1)
	h1, _ := l.Acquire(ctx, "heavy", 3) // nothing in flight: admitted
	got := make(chan int, 1)
	go func() { n, _ := l.Acquire(ctx, "heavy", 3); got <- n }() // 3 + 3 > 8/2
	poll.Until(t, "the second heavy request to wait", func() bool { return l.Waiting() == 1 })
	if l.InFlight() != 4 {
		t.Fatalf("in flight %d, want 4: the heavy client passed its share", l.InFlight())
	}
	l.Release("light", light)
	n := <-got
	l.Release("heavy", h1)
	l.Release("heavy", n)
}
