package decode

import (
	"context"
	"testing"
	"time"

	"catsdogs/tests/bombs"
)

// FuzzDecode: no input may panic, hang or allocate without bound, and every
// refusal must be one the HTTP layer answers with a 4xx. Seeds live in
// testdata/fuzz/FuzzDecode (one small file per format, plus bombs).
func FuzzDecode(f *testing.F) {
	opt := Options{MaxPixels: 1 << 22, MaxSide: 4096, MaxAspect: 32, Timeout: 2 * time.Second, MinW: 32, MinH: 32}
	const budget = 64 << 20                         // as if MEMORY_BUDGET were 64 MiB
	f.Add(bombs.ProgressiveJPEG(16, 16, 20, false)) // a scan sequence to mutate
	f.Add(bombs.GreyPNG(1, 2000))                   // over the aspect bound
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := Inspect(data, opt)
		if err != nil {
			if !IsClientError(err) {
				t.Fatalf("Inspect: %v is not a client error", err)
			}
			return
		}
		if Cost(h, opt) > budget {
			return // the classifier refuses it with ErrImageTooLarge
		}
		img, err := Pixels(context.Background(), data, h, opt)
		if err != nil {
			if !IsClientError(err) {
				t.Fatalf("decode: %v is not a client error", err)
			}
			return
		}
		if img.W <= 0 || img.H <= 0 || len(img.Pix) != img.W*img.H*3 {
			t.Fatalf("decoded %dx%d with %d bytes", img.W, img.H, len(img.Pix))
		}
	})
}
