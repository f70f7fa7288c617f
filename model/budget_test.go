package model

import (
	"catsdogs/tests/bombs"
	"catsdogs/tests/pets"
	"context"
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

// The classifier refuses what can never fit its budget before queueing (413),
// and sheds what does not fit now (ErrMemoryFull, 503).
func TestClassifyMemoryBudget(t *testing.T) {
	c := unitLoad(t, Options{Workers: 1, MemoryBudget: 64 << 20})
	bomb := bombs.ZeroPNG(3000, 3000, 16, bombs.RGBA) // 99 MB to decode
	var err error
	grew := bombs.Allocated(func() { _, err = c.Classify(context.Background(), bomb) })
	if !errors.Is(err, ErrImageTooLarge) {
		t.Fatalf("3000x3000 16-bit RGBA with a 64 MiB budget: %v, want ErrImageTooLarge", err)
	}
	if grew > 1<<20 {
		t.Errorf("allocated %d bytes before refusing", grew)
	}
	photo := pets.Read(t, pets.Sample(t, repoRoot, 1)[0])
	held := c.Budget().Total() - 100<<10
	if !c.Budget().TryAcquire(held) { // other requests hold all but 100 KiB
		t.Fatal("budget not free")
	}
	if _, err := c.Classify(context.Background(), photo); !errors.Is(err, ErrMemoryFull) {
		t.Errorf("budget full: %v, want ErrMemoryFull", err)
	}
	c.Budget().Release(held)
	if _, err := c.Classify(context.Background(), photo); err != nil {
		t.Errorf("budget free again: %v", err)
	}
	if c.Budget().InUse() != 0 {
		t.Errorf("Classify leaked %d bytes of budget", c.Budget().InUse())
	}
}
