//go:build linux

// End-to-end tests for hostile uploads (issue 7): small files that used to
// crash, stall or balloon the service. Every bomb is generated here.
package tests

import (
	"net/http"
	"testing"
	"time"

	"catsdogs/tests/bombs"
)

// A 20 KB 1 x 10,000,000 PNG is under MAX_IMAGE_PIXELS; it used to make the
// resampler ask for 20 GB and the Go runtime abort the whole process.
func TestHostileShapesAreRefused(t *testing.T) {
	tok := "Bearer " + iss.Token(nil)
	for _, c := range []struct {
		name string
		w, h int
	}{
		{"1x10000000", 1, 10_000_000},
		{"10000000x1", 10_000_000, 1},
		{"1x1000000", 1, 1_000_000},
		{"side over 16384", 20_000, 2_000},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := upload(t, mainSrv, tok, "strip.png", bombs.GreyPNG(c.w, c.h))
			wantError(t, resp, body, http.StatusRequestEntityTooLarge, "image_too_large")
		})
	}
	// A long but reasonable strip (32:1, the default bound) is still served.
	resp, body := upload(t, mainSrv, tok, "strip.png", bombs.GreyPNG(32, 1024))
	wantPrediction(t, resp, body)
	wantNoServerErrors(t, mainSrv)
}

// Progressive JPEG scan bombs: a 23 KB file of 883 tiny scans cost 1.7 s of
// decoding; 4000 repeated scans of a larger image cost 33 s. They are refused
// from their markers, before queueing or decoding.
func TestJPEGScanBombsAreRefusedFast(t *testing.T) {
	tok := "Bearer " + iss.Token(nil)
	for _, c := range []struct {
		name   string
		data   []byte
		status int
		code   string
	}{
		{"883 scans", bombs.ProgressiveJPEG(2048, 2048, 883, false), http.StatusUnprocessableEntity, "corrupt_image"},
		{"4000 repeated scans", bombs.ProgressiveJPEG(2048, 2048, 4000, true), http.StatusUnprocessableEntity, "corrupt_image"},
		{"200 scans of 16 MP", bombs.ProgressiveJPEG(4096, 4096, 200, false), http.StatusRequestEntityTooLarge, "image_too_large"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t0 := time.Now()
			resp, body := upload(t, mainSrv, tok, "bomb.jpg", c.data)
			wantError(t, resp, body, c.status, c.code)
			if d := time.Since(t0); d > time.Second {
				t.Errorf("answered after %s", d)
			}
		})
	}
	// An ordinary progressive JPEG is still classified.
	resp, body := upload(t, mainSrv, tok, "progressive.jpg", bombs.ProgressiveJPEG(640, 480, 10, false))
	wantPrediction(t, resp, body)
	wantNoServerErrors(t, mainSrv)
}
