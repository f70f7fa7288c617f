package model

import (
	"context"
	"errors"
	"testing"

	"catsdogs/admission"
	"catsdogs/tests/bombs"
	"catsdogs/tests/pets"
)

// The classifier refuses what can never fit its budget before queueing (413),
// and sheds what does not fit now (admission.ErrMemoryFull, 503).
func TestClassifyMemoryBudget(t *testing.T) {
	c := unitLoad(t, Options{Workers: 1, Admission: admission.New(admission.Config{MemoryBudget: 64 << 20})})
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
	held := c.budget.Total() - 100<<10
	if !c.budget.TryAcquire(held) { // other requests hold all but 100 KiB
		t.Fatal("budget not free")
	}
	if _, err := c.Classify(context.Background(), photo); !errors.Is(err, admission.ErrMemoryFull) {
		t.Errorf("budget full: %v, want ErrMemoryFull", err)
	}
	c.budget.Release(held)
	if _, err := c.Classify(context.Background(), photo); err != nil {
		t.Errorf("budget free again: %v", err)
	}
	if c.budget.InUse() != 0 {
		t.Errorf("Classify leaked %d bytes of budget", c.budget.InUse())
	}
}
