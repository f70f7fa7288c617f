package model

import (
	"context"
	"errors"
	"testing"
	"time"

	"catsdogs/tests/bombs"
	"catsdogs/tests/pets"
	"catsdogs/tests/poll"
)

// Uploads whose header is garbage or over a bound are answered before the
// request queues for a worker: with every worker busy and the queue full they
// still get their 4xx at once, never admission.ErrBusy or a wait.
func TestClassifyChecksHeaderBeforeQueueing(t *testing.T) {
	c := unitLoad(t, Options{Workers: 1, MaxPixels: 1 << 24, MaxSide: 1 << 13, MaxAspect: 8,
		Admission: testAdmission(1)})
	defer occupy(t, c)()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	photo := pets.Read(t, pets.Sample(t, repoRoot, 1)[0])
	go func() { _, _ = c.Classify(ctx, photo) }() // fills the queue
	poll.Until(t, "a queued request", func() bool { return c.adm.Limiter().Waiting() == 1 })
	for _, in := range []struct {
		name string
		data []byte
		want error
	}{
		{"text", []byte("not an image at all"), ErrUnsupportedFormat},
		{"zero-size PNG", bombs.PNGHeader(0, 10), ErrCorruptImage},
		{"strip", bombs.PNGHeader(1, 10_000_000), ErrImageTooLarge},
		{"10 GP", bombs.PNGHeader(100_000, 100_000), ErrImageTooLarge},
	} {
		t0 := time.Now()
		_, err := c.Classify(ctx, in.data)
		if !errors.Is(err, in.want) {
			t.Errorf("%s: %v, want %v", in.name, err, in.want)
		}
		if d := time.Since(t0); d > 5*time.Second { // a hang; the error says the header refused it
			t.Errorf("%s: took %s", in.name, d)
		}
	}
}
