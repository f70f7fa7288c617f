package model

import (
	"context"
	"errors"
	"sync"
	"testing"

	"catsdogs/tests/bombs"
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

// Decoding allocates no more than decodeCost says, the figure that is
// reserved from the memory budget. Before, 16-bit and palette images went
// through image.At, which boxed every pixel: a 7000x7000 16-bit RGBA PNG
// (381 KB) allocated 888 MiB where 514 MiB is the decoded image plus its RGB.
func TestDecodeAllocatesWithinItsCost(t *testing.T) {
	const W, H = 1000, 1000
	cases := map[string][]byte{
		"16-bit RGBA PNG":       bombs.ZeroPNG(W, H, 16, bombs.RGBA),
		"16-bit RGB PNG":        bombs.ZeroPNG(W, H, 16, bombs.RGB),
		"16-bit grey+alpha PNG": bombs.ZeroPNG(W, H, 16, bombs.GreyAlpha),
		"16-bit grey PNG":       bombs.ZeroPNG(W, H, 16, bombs.Grey),
		"8-bit RGBA PNG":        bombs.ZeroPNG(W, H, 8, bombs.RGBA),
		"8-bit grey PNG":        bombs.ZeroPNG(W, H, 8, bombs.Grey),
		"progressive JPEG":      bombs.ProgressiveJPEG(W, H, 12, false),
	}
	for name, data := range cases {
		opt := DecodeOptions{MinW: 144, MinH: 144}
		h, err := Inspect(data, opt)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		cost := decodeCost(h, data, opt)
		var derr error
		grew := allocated(func() { _, derr = DecodeInspected(context.Background(), data, h, opt) })
		if derr != nil {
			t.Fatalf("%s: %v", name, derr)
		}
		if int64(grew) > cost {
			t.Errorf("%s: decode allocated %d bytes, over its reserved cost of %d", name, grew, cost)
		}
		t.Logf("%s: allocated %.1f MB, reserved %.1f MB", name, float64(grew)/1e6, float64(cost)/1e6)
	}
}

func TestDecodeCostCountsBytesPerPixel(t *testing.T) {
	// 7000x7000 16-bit RGBA: 8 bytes decoded + 3 of RGB per pixel.
	data := bombs.ZeroPNG(7000, 7000, 16, bombs.RGBA)
	h, err := Inspect(data, DecodeOptions{MaxPixels: 50_000_000})
	if err != nil {
		t.Fatal(err)
	}
	slack := int64(256<<10 + 16*7000)
	if got, want := decodeCost(h, data, DecodeOptions{}), 49_000_000*11+slack; got != want {
		t.Errorf("cost %d, want %d", got, want)
	}
	// The same pixels as 8-bit grey cost 4 + 3 (a tRNS chunk may widen grey).
	g := bombs.ZeroPNG(7000, 7000, 8, bombs.Grey)
	if h, _ := Inspect(g, DecodeOptions{}); decodeCost(h, g, DecodeOptions{}) != 49_000_000*7+slack {
		t.Errorf("8-bit grey: cost %d", decodeCost(h, g, DecodeOptions{}))
	}
}

// The classifier refuses what can never fit its budget before queueing (413),
// and sheds what does not fit now (ErrMemoryFull, 503).
func TestClassifyMemoryBudget(t *testing.T) {
	c := unitLoad(t, Options{Workers: 1, MemoryBudget: 64 << 20})
	bomb := bombs.ZeroPNG(3000, 3000, 16, bombs.RGBA) // 99 MB to decode
	var err error
	grew := allocated(func() { _, err = c.Classify(context.Background(), bomb) })
	if !errors.Is(err, ErrImageTooLarge) {
		t.Fatalf("3000x3000 16-bit RGBA with a 64 MiB budget: %v, want ErrImageTooLarge", err)
	}
	if grew > 1<<20 {
		t.Errorf("allocated %d bytes before refusing", grew)
	}
	photo := unitReadFile(t, unitPhotos(t, 1)[0])
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
