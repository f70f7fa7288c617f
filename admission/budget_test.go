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
	if NewBudget(0).Total() != DefaultMemoryBudget {
		t.Error("zero total is not the default")
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
