package decode

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"testing"

	"catsdogs/tests/bombs"
)

// Decoding allocates no more than Cost says, the figure that is
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
		opt := Options{MinW: 144, MinH: 144}
		h, err := Inspect(data, opt)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		cost := Cost(h, opt)
		var derr error
		grew := bombs.Allocated(func() { _, derr = Pixels(context.Background(), data, h, opt) })
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
	h, err := Inspect(data, Options{MaxPixels: 50_000_000})
	if err != nil {
		t.Fatal(err)
	}
	slack := int64(256<<10 + 16*7000)
	if got, want := Cost(h, Options{}), 49_000_000*11+slack; got != want {
		t.Errorf("cost %d, want %d", got, want)
	}
	// The same pixels as 8-bit grey cost 4 + 3 (a tRNS chunk may widen grey).
	g := bombs.ZeroPNG(7000, 7000, 8, bombs.Grey)
	if h, _ := Inspect(g, Options{}); Cost(h, Options{}) != 49_000_000*7+slack {
		t.Errorf("8-bit grey: cost %d", Cost(h, Options{}))
	}
}

// Inspect's one walk over the bytes leaves in the Header all that Cost needs:
// the same header with the bytes thrown away prices the decode the same, and
// its scan count and interlacing are what raise the price.
func TestCostNeedsOnlyTheHeader(t *testing.T) {
	opt := Options{MinW: 144, MinH: 144}
	progressive := bombs.ProgressiveJPEG(1000, 1000, 12, false)
	interlaced := bombs.ZeroPNG(1000, 1000, 8, bombs.RGB)
	interlaced[28] = 1 // IHDR's interlace method: Adam7, and the chunk's CRC redone
	binary.BigEndian.PutUint32(interlaced[29:], crc32.ChecksumIEEE(interlaced[12:29]))

	for name, c := range map[string]struct {
		data       []byte
		scans      int
		interlaced bool
	}{
		"progressive JPEG": {progressive, 12, false},
		"interlaced PNG":   {interlaced, 0, true},
	} {
		h, err := Inspect(c.data, opt)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if h.Scans != c.scans || h.Interlaced != c.interlaced {
			t.Errorf("%s: header has %d scans, interlaced %v; want %d, %v", name, h.Scans, h.Interlaced, c.scans, c.interlaced)
		}
		clear(c.data) // Cost cannot look at the bytes again
		cost := Cost(h, opt)
		plain := h
		plain.Scans, plain.Interlaced = min(h.Scans, 1), false
		if cost <= Cost(plain, opt) {
			t.Errorf("%s: cost %d, no more than the same image single-scan and not interlaced (%d)", name, cost, Cost(plain, opt))
		}
	}
}
