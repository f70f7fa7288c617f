package model

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"catsdogs/tests/bombs"
)

// allocated reports the bytes f allocated on the Go heap (TotalAlloc grows
// monotonically, so concurrent GC does not hide anything).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A 1 x 10,000,000 PNG is only 10 MP, under the area cap, but resized to a
// 128-px shorter side its long side would be 1.28e9 px. It must be refused from
// its header, before any pixel is decoded.
func TestDecodeRefusesExtremeAspectRatioFromHeader(t *testing.T) {
	data := bombs.GreyPNG(1, 10_000_000)
	t.Logf("1x10,000,000 greyscale PNG: %d bytes", len(data))
	opt := DecodeOptions{MaxPixels: 50_000_000, MaxSide: DefaultMaxSide, MaxAspect: DefaultMaxAspect}
	var err error
	grew := allocated(func() { _, _, err = Decode(data, opt) })
	if !errors.Is(err, ErrImageTooLarge) {
		t.Fatalf("got %v, want ErrImageTooLarge", err)
	}
	if grew > 1<<20 {
		t.Errorf("allocated %d bytes before refusing", grew)
	}
}

func TestDecodeSideAndAspectLimits(t *testing.T) {
	opt := DecodeOptions{MaxPixels: 1 << 30, MaxSide: 1000, MaxAspect: 4}
	for _, c := range []struct {
		w, h int
		ok   bool
	}{
		{1000, 250, true}, {250, 1000, true}, // exactly at both limits
		{1001, 300, false}, {300, 1001, false}, // one side over
		{1000, 249, false}, {249, 1000, false}, // aspect just over 4:1
		{1, 1, true}, {4, 1, true}, {5, 1, false},
	} {
		_, _, err := Decode(pngHeader(uint32(c.w), uint32(c.h)), opt)
		refused := errors.Is(err, ErrImageTooLarge)
		if refused == c.ok {
			t.Errorf("%dx%d: err %v, want refused=%v", c.w, c.h, err, !c.ok)
		}
	}
	// Zero means unlimited, as for MaxPixels.
	if _, _, err := Decode(pngHeader(100_000, 1), DecodeOptions{}); errors.Is(err, ErrImageTooLarge) {
		t.Errorf("no limits set: %v", err)
	}
}

// The resampler must size its coefficient tables and scratch rows for the
// crop window only. Before, a 1 x 50,000 image headed for a 128-px centre crop
// allocated tables for all 7.2 million rows of the scaled image (~200 MB);
// at 1 x 10,000,000 the same arithmetic asked for 20 GB and killed the process.
func TestPreprocessAllocatesOnlyForTheCropWindow(t *testing.T) {
	p := NewPreprocessor(unitTorchSpec(128))
	out := make([]float32, p.TensorLen())
	for _, src := range []*RGB{unitSolid(1, 50_000, [3]uint8{9, 99, 199}), unitSolid(50_000, 1, [3]uint8{9, 99, 199})} {
		p.Fill(out, src) // warm the scratch pool
		grew := allocated(func() { p.Fill(out, src) })
		// The window is 128x128: coefficients for 128 outputs per axis and a
		// few source rows. 1 MB leaves room for the pool, not for the long side.
		if grew > 1<<20 {
			t.Errorf("%dx%d: Fill allocated %d bytes", src.W, src.H, grew)
		}
		// A constant image stays constant, so the window was computed right.
		want := fillTensor(unitTorchSpec(128), unitSolid(128, 128, [3]uint8{9, 99, 199}))
		if m, _ := tensorDiff(out, want); m != 0 {
			t.Errorf("%dx%d: tensor differs from a constant image's", src.W, src.H)
		}
	}
}

// Uploads whose header is garbage or over a bound are answered before the
// request queues for a worker: with every worker busy and the queue full they
// still get their 4xx at once, never ErrBusy or a wait.
func TestClassifyChecksHeaderBeforeQueueing(t *testing.T) {
	c := unitLoad(t, Options{Workers: 1, QueueSize: 1})
	if err := c.Limiter().Acquire(context.Background()); err != nil { // the only worker
		t.Fatal(err)
	}
	defer c.Limiter().Release()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	photo := unitReadFile(t, unitPhotos(t, 1)[0])
	go func() { _, _ = c.Classify(ctx, photo) }() // fills the queue
	waitFor(t, "a queued request", func() bool { return c.Limiter().Waiting() == 1 })
	for _, in := range []struct {
		name string
		data []byte
		want error
	}{
		{"text", []byte("not an image at all"), ErrUnsupportedFormat},
		{"zero-size PNG", pngHeader(0, 10), ErrCorruptImage},
		{"strip", pngHeader(1, 10_000_000), ErrImageTooLarge},
		{"10 GP", pngHeader(100_000, 100_000), ErrImageTooLarge},
	} {
		t0 := time.Now()
		_, err := c.Classify(ctx, in.data)
		if !errors.Is(err, in.want) {
			t.Errorf("%s: %v, want %v", in.name, err, in.want)
		}
		if d := time.Since(t0); d > 100*time.Millisecond {
			t.Errorf("%s: took %s", in.name, d)
		}
	}
}
