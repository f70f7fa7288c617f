//go:build linux

// End-to-end tests for hostile uploads (issue 7): small files that used to
// crash, stall or balloon the service. Every bomb is generated here.
package tests

import (
	"net/http"
	"testing"

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
