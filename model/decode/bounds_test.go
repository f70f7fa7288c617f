package decode

import (
	"catsdogs/tests/bombs"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// A 1 x 10,000,000 PNG is only 10 MP, under the area cap, but resized to a
// 128-px shorter side its long side would be 1.28e9 px. It must be refused from
// its header (here by the aspect bound alone), before any pixel is decoded.
func TestDecodeRefusesExtremeAspectRatioFromHeader(t *testing.T) {
	data := bombs.GreyPNG(1, 10_000_000)
	t.Logf("1x10,000,000 greyscale PNG: %d bytes", len(data))
	opt := Options{MaxPixels: 20_000_000, MaxAspect: 10}
	var err error
	grew := bombs.Allocated(func() { _, _, err = Decode(data, opt) })
	if !errors.Is(err, ErrImageTooLarge) {
		t.Fatalf("got %v, want ErrImageTooLarge", err)
	}
	if grew > 1<<20 {
		t.Errorf("allocated %d bytes before refusing", grew)
	}
}

func TestDecodeSideAndAspectLimits(t *testing.T) {
	opt := Options{MaxPixels: 1 << 30, MaxSide: 1000, MaxAspect: 4}
	for _, c := range []struct {
		w, h int
		ok   bool
	}{
		{1000, 250, true}, {250, 1000, true}, // exactly at both limits
		{1001, 300, false}, {300, 1001, false}, // one side over
		{1000, 249, false}, {249, 1000, false}, // aspect just over 4:1
		{1, 1, true}, {4, 1, true}, {5, 1, false},
	} {
		_, _, err := Decode(bombs.PNGHeader(c.w, c.h), opt)
		refused := errors.Is(err, ErrImageTooLarge)
		if refused == c.ok {
			t.Errorf("%dx%d: err %v, want refused=%v", c.w, c.h, err, !c.ok)
		}
	}
	// Each refusal names its own limit: a panorama is not "too many pixels".
	_, _, err := Decode(bombs.PNGHeader(1000, 100), opt)
	if msg := fmt.Sprint(err); !strings.Contains(msg, "longer than wide") || strings.Contains(msg, "pixels") {
		t.Errorf("panorama: %q, want the aspect ratio as the reason", msg)
	}
	// Zero means unlimited, as for MaxPixels.
	if _, _, err := Decode(bombs.PNGHeader(100_000, 1), Options{}); errors.Is(err, ErrImageTooLarge) {
		t.Errorf("no limits set: %v", err)
	}
}
