package model

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"catsdogs/admission"
	"catsdogs/tests/pets"
	"catsdogs/tests/poll"
)

// Images that share a batched Run get the probabilities they get alone.
func TestBatchingMatchesUnbatched(t *testing.T) {
	photos := pets.Sample(t, repoRoot, 3) // 9 images: more than one batch
	plain := unitLoad(t, Options{MaxBatch: 1})
	batched := unitLoad(t, Options{Workers: 2, MaxBatch: 4, MaxDelay: 200 * time.Millisecond})
	if batched.Info.MaxBatch != 4 {
		t.Fatalf("batching on: info %+v, want batch_max_size 4", batched.Info)
	}
	want := make([]*Result, len(photos))
	for i, p := range photos {
		r, err := plain.Classify(context.Background(), pets.Read(t, p))
		if err != nil {
			t.Fatal(err)
		}
		if r.Batch != 1 {
			t.Fatalf("batching off: ran in a batch of %d", r.Batch)
		}
		want[i] = r
	}
	got := make([]*Result, len(photos))
	var wg sync.WaitGroup
	for i, p := range photos {
		data := pets.Read(t, p)
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := batched.Classify(context.Background(), data)
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = r
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	shared := 0
	for i := range photos {
		if got[i].Label != want[i].Label {
			t.Errorf("%s: %s batched, %s alone", photos[i], got[i].Label, want[i].Label)
		}
		for k := range want[i].Probabilities {
			if d := math.Abs(float64(got[i].Probabilities[k] - want[i].Probabilities[k])); d > 1e-4 {
				t.Errorf("%s: p[%d] %.6f batched, %.6f alone", photos[i], k, got[i].Probabilities[k], want[i].Probabilities[k])
			}
		}
		if got[i].Batch > 1 {
			shared++
		}
		if got[i].Batch > 4 {
			t.Errorf("ran in a batch of %d, over batch_max_size 4", got[i].Batch)
		}
	}
	if shared == 0 {
		t.Error("9 concurrent requests with a 200 ms delay never shared a Run")
	}
}

// A lone request does not wait for the batch delay: nothing else is being
// prepared, so nothing could join it.
func TestBatchingLoneRequestSkipsDelay(t *testing.T) {
	// A minute of delay: waiting it out cannot be mistaken for a slow machine.
	c := unitLoad(t, Options{MaxBatch: 8, MaxDelay: time.Minute})
	data := pets.Read(t, pets.Sample(t, repoRoot, 1)[0])
	for i := 0; i < 3; i++ {
		t0 := time.Now()
		r, err := c.Classify(context.Background(), data)
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(t0); d > 30*time.Second {
			t.Fatalf("a lone request took %s: it waited for the 1-minute batch delay", d)
		}
		if r.Batch != 1 {
			t.Fatalf("lone request in a batch of %d", r.Batch)
		}
	}
}

// ClassifyMany answers in order, each image on its own: a bad one gets its
// error and does not fail the others, whose results equal Classify's.
func TestClassifyManyPerImage(t *testing.T) {
	for _, batch := range []int{1, 8} {
		c := unitLoad(t, Options{MaxBatch: batch, MaxDelay: 20 * time.Millisecond})
		photos := pets.Sample(t, repoRoot, 2)
		var images [][]byte
		for i, p := range photos {
			images = append(images, pets.Read(t, p))
			if i == 1 {
				images = append(images, []byte("not an image"))
			}
		}
		images = append(images, []byte{0xFF, 0xD8, 0xFF, 0xE0, 0, 16}) // a cut JPEG
		items, err := c.ClassifyMany(context.Background(), images)
		if err != nil {
			t.Fatal(err)
		}
		if len(items) != len(images) {
			t.Fatalf("batch %d: %d items for %d images", batch, len(items), len(images))
		}
		if !errors.Is(items[2].Err, ErrUnsupportedFormat) || !errors.Is(items[len(items)-1].Err, ErrCorruptImage) {
			t.Errorf("batch %d: bad images got %v and %v", batch, items[2].Err, items[len(items)-1].Err)
		}
		for i, it := range items {
			if i == 2 || i == len(items)-1 {
				continue
			}
			if it.Err != nil {
				t.Fatalf("batch %d: image %d: %v", batch, i, it.Err)
			}
			alone, err := c.Classify(context.Background(), images[i])
			if err != nil {
				t.Fatal(err)
			}
			if it.Result.Label != alone.Label || math.Abs(float64(it.Result.Probabilities[0]-alone.Probabilities[0])) > 1e-4 {
				t.Errorf("batch %d: image %d: %s %v in the request, %s %v alone", batch, i,
					it.Result.Label, it.Result.Probabilities, alone.Label, alone.Probabilities)
			}
		}
		if c.adm.Limiter().InFlight() != 0 || c.budget.InUse() != 0 {
			t.Errorf("batch %d: leaked %d admissions, %d budget bytes", batch, c.adm.Limiter().InFlight(), c.budget.InUse())
		}
	}
}

// A many-image request is admitted as a whole: when the service is full it
// is refused at once, before any image is decoded.
func TestClassifyManyBusy(t *testing.T) {
	c := unitLoad(t, Options{MaxBatch: 4})
	defer occupy(t, c)()
	data := pets.Read(t, pets.Sample(t, repoRoot, 1)[0])
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// QueueSize 0 means "the default", so fill the queue too.
	for i := 0; i < c.Info.QueueSize; i++ {
		go func() { _, _ = c.Classify(ctx, data) }()
	}
	poll.Until(t, "a full queue", func() bool { return c.adm.Limiter().Waiting() == c.Info.QueueSize })
	if _, err := c.ClassifyMany(ctx, [][]byte{data, data}); !errors.Is(err, admission.ErrBusy) {
		t.Fatalf("full: %v, want ErrBusy", err)
	}
}

// A many-image request weighs the images it can have in flight: with room
// for one image left it waits, where a one-image upload is let in.
func TestClassifyManyWeighsItsImages(t *testing.T) {
	c := unitLoad(t, Options{MaxBatch: 4})
	lim := c.adm.Limiter()
	data := pets.Read(t, pets.Sample(t, repoRoot, 1)[0])
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	release := occupyN(t, c, c.Info.Admitted-1)
	done := make(chan error, 1)
	go func() { _, err := c.ClassifyMany(ctx, [][]byte{data, data, data}); done <- err }()
	poll.Until(t, "the three-image request to queue", func() bool { return lim.Waiting() == 1 })
	release()
	if err := <-done; err != nil {
		t.Fatalf("ClassifyMany after room was made: %v", err)
	}

	defer occupyN(t, c, c.Info.Admitted-1)()
	if _, err := c.Classify(ctx, data); err != nil { // fits the one free slot
		t.Fatalf("one image with one slot free: %v", err)
	}
	if lim.InFlight() != c.Info.Admitted-1 {
		t.Errorf("in flight %d after the upload, want %d", lim.InFlight(), c.Info.Admitted-1)
	}
}

// With more runners than images, the images still meet in one run: only
// one runner collects at a time, so idle runners cannot take the images a
// collecting one waits for (which left it waiting out the whole delay).
func TestBatchingWithIdleRunners(t *testing.T) {
	// A minute of delay: waiting it out cannot be mistaken for a slow machine.
	c := unitLoad(t, Options{Workers: 8, IntraOpThreads: 1, MaxBatch: 8, MaxDelay: time.Minute})
	photos := pets.Sample(t, repoRoot, 2)
	var mu sync.Mutex
	shared, slowest := 0, time.Duration(0)
	// Two goroutines start together; rarely the first image is queued before
	// the second is even counted, and then it rightly runs alone. A few
	// rounds make sharing certain without depending on the scheduler.
	for round := 0; round < 10 && shared == 0; round++ {
		var wg sync.WaitGroup
		for _, p := range photos {
			data := pets.Read(t, p)
			wg.Add(1)
			go func() {
				defer wg.Done()
				t0 := time.Now()
				r, err := c.Classify(context.Background(), data)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				slowest = max(slowest, time.Since(t0))
				if r.Batch > 1 {
					shared++
				}
			}()
		}
		wg.Wait()
	}
	if shared == 0 {
		t.Error("2 concurrent images and 8 idle runners, 10 rounds: no image shared a run")
	}
	if slowest >= 30*time.Second {
		t.Errorf("an image took %s: a runner waited out the 1-minute delay for images other runners took", slowest)
	}
}

// An image whose preparation fails stops being waited for at once.
func TestBatchingStopsWaitingForFailedImage(t *testing.T) {
	// A minute of delay: waiting it out cannot be mistaken for a slow machine.
	c := unitLoad(t, Options{MaxBatch: 8, MaxDelay: time.Minute})
	photo := pets.Sample(t, repoRoot, 1)[0]
	good := pets.Read(t, photo)
	// A 12 MP JPEG cut short: its decode runs for milliseconds, long after
	// the small good image is queued, then fails.
	big, err := pets.Upscaled(photo, 4032, 3024, 90)
	if err != nil {
		t.Fatal(err)
	}
	cut := big[:len(big)*9/10]
	for i := 0; i < 3; i++ {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = c.Classify(context.Background(), cut) }()
		t0 := time.Now()
		if _, err := c.Classify(context.Background(), good); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(t0); d > 30*time.Second {
			t.Fatalf("the good image waited %s for a run the failed one never joined", d)
		}
		wg.Wait()
	}
}

// After Close, nothing waits forever and nothing runs on a closed session.
func TestBatchingClosed(t *testing.T) {
	c := unitLoad(t, Options{MaxBatch: 4})
	c.Close()
	c.Close() // twice is fine (and Cleanup calls it again)
	data := pets.Read(t, pets.Sample(t, repoRoot, 1)[0])
	done := make(chan error, 1)
	go func() { _, err := c.Classify(context.Background(), data); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("classified on a closed classifier")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Classify after Close hangs")
	}
}

// The pipeline's sizes follow from CPUs, runners and batch size in one place.
func TestSizePipeline(t *testing.T) {
	s := sizePipeline(2, 2, 8)
	if s.admitted != 18 || s.lanes != 8 || !slices.Equal(s.warm, []int{1, 1, 2, 4, 8}) {
		t.Errorf("2 CPUs, 2 runners, batch 8: %+v", s)
	}
	s = sizePipeline(16, 4, 1) // batching off: lanes follow the CPUs
	if s.admitted != 20 || s.lanes != 16 || !slices.Equal(s.warm, []int{1, 1}) {
		t.Errorf("16 CPUs, 4 runners, batch 1: %+v", s)
	}
	if s := sizePipeline(2, 2, 6); !slices.Equal(s.warm, []int{1, 1, 2, 4, 6}) {
		t.Errorf("batch 6 warms %v", s.warm)
	}
}
