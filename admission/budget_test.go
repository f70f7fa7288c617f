package admission

import (
	"errors"
	"sync"
	"testing"
)

func TestBudgetAllOrNothing(t *testing.T) {
	b := NewBudget(100)
	if !b.TryAcquire(60) || b.TryAcquire(41) || !b.TryAcquire(40) || b.TryAcquire(1) {
		t.Fatal("admission does not match the free bytes")
	}
	b.Release(60)
	if b.InUse() != 40 || !b.TryAcquire(60) {
		t.Fatalf("after release: in use %d", b.InUse())
	}
	if !b.Fits(100) || b.Fits(101) {
		t.Error("Fits is not 'at most the total'")
	}
	if _, err := b.Reserve(1); !errors.Is(err, ErrMemoryFull) {
		t.Errorf("full budget: %v, want ErrMemoryFull", err)
	}
	b.Release(100)
	release, err := b.Reserve(30)
	if err != nil || b.InUse() != 30 {
		t.Fatalf("reserve: %v, in use %d", err, b.InUse())
	}
	release()
	// Concurrent takers never overshoot.
	b = NewBudget(1000)
	var wg sync.WaitGroup
	var mu sync.Mutex
	held := int64(0)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if b.TryAcquire(30) {
				mu.Lock()
				held += 30
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if held != 990 || b.InUse() != 990 {
		t.Errorf("held %d, in use %d; want 990", held, b.InUse())
	}
}

func TestReservationFollowsWhatItHolds(t *testing.T) {
	b := NewBudget(100)
	r := b.Open()
	if r.Size() != 0 || b.InUse() != 0 {
		t.Fatal("a new reservation holds something")
	}
	if err := r.Resize(60); err != nil || b.InUse() != 60 {
		t.Fatalf("grow to 60: %v, in use %d", err, b.InUse())
	}
	if err := r.Resize(101); !errors.Is(err, ErrMemoryFull) || r.Size() != 60 || b.InUse() != 60 {
		t.Fatalf("grow past the budget: %v, size %d, in use %d; want ErrMemoryFull and nothing changed", err, r.Size(), b.InUse())
	}
	if err := r.Resize(20); err != nil || b.InUse() != 20 {
		t.Fatalf("shrink to 20: %v, in use %d", err, b.InUse())
	}
	r.Close()
	if b.InUse() != 0 || r.Size() != 0 {
		t.Fatalf("after Close: in use %d, size %d", b.InUse(), r.Size())
	}
}

// A budget of 0 would refuse every request: it is a wiring mistake, not a
// setting (MEMORY_BUDGET refuses 0), and fails at start.
func TestZeroBudgetRefusedAtConstruction(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewBudget(0) made a budget")
		}
	}()
	NewBudget(0)
}
