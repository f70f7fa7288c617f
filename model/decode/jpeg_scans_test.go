package decode

import (
	"bytes"
	"context"
	"errors"
	"image/jpeg"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"catsdogs/tests/bombs"
	"catsdogs/tests/testimg"
)

func TestJPEGScansCounts(t *testing.T) {
	var b bytes.Buffer
	_ = jpeg.Encode(&b, testimg.PatternImage(300, 200), &jpeg.Options{Quality: 95})
	if n := jpegScans(b.Bytes(), 10); n != 1 {
		t.Errorf("baseline: %d scans, want 1", n)
	}
	for _, n := range []int{1, 2, 11, 600} {
		if got := jpegScans(bombs.ProgressiveJPEG(64, 64, n, false), 1000); got != n {
			t.Errorf("progressive with %d scans: counted %d", n, got)
		}
	}
	// Counting stops just past the limit.
	if got := jpegScans(bombs.ProgressiveJPEG(64, 64, 600, false), 20); got != 21 {
		t.Errorf("limit 20: counted %d, want 21", got)
	}
	for _, bad := range [][]byte{nil, {0xFF}, {0xFF, 0xD8}, {0xFF, 0xD8, 0xFF, 0xDA, 0, 0}, {0xFF, 0xD8, 0xFF, 0xDA, 0xFF, 0xFF}} {
		_ = jpegScans(bad, 500) // must not panic
	}
}

// Scan bombs are refused from their markers, before any pixel work: 883
// scans of a 2048² image decoded for 1.7 s (libjpeg-turbo) or 3.9 s (pure Go).
func TestDecodeRefusesJPEGScanBombs(t *testing.T) {
	for _, c := range []struct {
		name      string
		w, h, n   int
		repeat    bool
		want      error
		wantInErr string
	}{
		{"883 valid scans", 2048, 2048, 883, false, ErrCorruptImage, "more than 500 scans"},
		{"4000 repeated scans", 64, 64, 4000, true, ErrCorruptImage, "more than 500 scans"},
		{"200 scans of 16 MP", 4096, 4096, 200, false, ErrImageTooLarge, "decode budget"},
	} {
		data := bombs.ProgressiveJPEG(c.w, c.h, c.n, c.repeat)
		t0 := time.Now()
		_, _, err := Decode(data, Options{MinW: 144, MinH: 144})
		d := time.Since(t0)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.wantInErr) {
			t.Errorf("%s (%d bytes): %v, want %v (%q)", c.name, len(data), err, c.want, c.wantInErr)
		}
		if d > 5*time.Second { // a hang; the error says the markers refused it
			t.Errorf("%s: refusing took %s", c.name, d)
		}
	}
	// Ordinary progressive files pass.
	if _, _, err := Decode(bombs.ProgressiveJPEG(640, 480, 12, false), Options{}); err != nil {
		t.Errorf("12-scan progressive JPEG: %v", err)
	}
}

// libjpeg-turbo enforces the scan limit itself too (progress monitor), and
// treats an invalid progression as corrupt instead of decoding garbage.
func TestJPEGTurboScanLimitAndBogusProgression(t *testing.T) {
	if !LibjpegTurbo {
		t.Skip("built without libjpeg-turbo (purego)")
	}
	bomb := bombs.ProgressiveJPEG(64, 64, 883, false)
	h := Header{Format: "jpeg", Width: 64, Height: 64}
	if _, err := decodeJPEGTurbo(context.Background(), bomb, h, 1, 0); err != nil {
		t.Fatalf("883 valid scans without a limit: %v", err)
	}
	_, err := decodeJPEGTurbo(context.Background(), bomb, h, 1, 500)
	if !errors.Is(err, ErrCorruptImage) || !strings.Contains(err.Error(), "more than 500 scans") {
		t.Errorf("limit 500: %v", err)
	}
	_, err = decodeJPEGTurbo(context.Background(), bombs.ProgressiveJPEG(64, 64, 890, true), h, 1, 0)
	if !errors.Is(err, ErrCorruptImage) || !strings.Contains(err.Error(), "progression") {
		t.Errorf("repeated scans: %v, want a corrupt-progression error", err)
	}
}

// slowJPEG is a scan bomb that Inspect would refuse (over the scan-work
// budget) but that libjpeg-turbo decodes, slowly: about 4 s on the dev
// machine. The tests hand its header straight to Pixels, so only the
// deadline or the context can stop it early: their errors (the timeout's,
// context.Canceled) show it was still decoding when stopped; the bounds on
// how long stopping takes leave room for a loaded machine.
func slowJPEG() ([]byte, Header) {
	return bombs.ProgressiveJPEG(4096, 4096, 500, false), Header{Format: "jpeg", Width: 4096, Height: 4096, Orientation: 1}
}

func TestDecodeTimeout(t *testing.T) {
	if !LibjpegTurbo {
		t.Skip("the pure-Go decoders cannot be interrupted")
	}
	data, h := slowJPEG()
	t0 := time.Now()
	_, err := Pixels(context.Background(), data, h, Options{Timeout: 100 * time.Millisecond, MinW: 144, MinH: 144})
	d := time.Since(t0)
	if !errors.Is(err, ErrImageTooLarge) || !strings.Contains(err.Error(), "took longer than 100ms") {
		t.Fatalf("got %v, want the decode timeout", err)
	}
	if d > time.Second {
		t.Errorf("a 100 ms deadline stopped the decode after %s", d)
	}
	t.Logf("stopped after %s", d)
}

// A client that hangs up stops the decode (the request context is cancelled).
func TestDecodeStopsWhenContextEnds(t *testing.T) {
	if !LibjpegTurbo {
		t.Skip("the pure-Go decoders cannot be interrupted")
	}
	data, h := slowJPEG()
	opt := Options{MinW: 144, MinH: 144}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	t0 := time.Now()
	_, err := Pixels(ctx, data, h, opt)
	d := time.Since(t0)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if d > time.Second {
		t.Errorf("cancelled after 50 ms, the decode ran for %s", d)
	}
	t.Logf("cancelled decode stopped after %s", d)
}

// jpegScansBytewise is jpegScans as first written, walking entropy-coded data
// a byte at a time: the reference the vectorised walk must agree with.
func jpegScansBytewise(b []byte, limit int) int {
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		return 0
	}
	scans, i := 0, 2
	for i+1 < len(b) && scans <= limit {
		if b[i] != 0xFF {
			return scans
		}
		m := b[i+1]
		switch {
		case m == 0xFF:
			i++
			continue
		case m == 0xD9:
			return scans
		case m == 0x01 || m == 0xD8 || (m >= 0xD0 && m <= 0xD7):
			i += 2
			continue
		}
		if i+4 > len(b) {
			return scans
		}
		n := int(b[i+2])<<8 | int(b[i+3])
		if n < 2 {
			return scans
		}
		i += 2 + n
		if m != 0xDA {
			continue
		}
		scans++
		for i+1 < len(b) && !(b[i] == 0xFF && b[i+1] != 0 && (b[i+1] < 0xD0 || b[i+1] > 0xD7)) {
			i++
		}
	}
	return scans
}

// Random marker soups (SOS segments, stuffed bytes, restarts, fill bytes,
// cut anywhere) count the same both ways.
func TestJPEGScansMatchesBytewise(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pick := []byte{0xFF, 0x00, 0xD0, 0xD7, 0xD9, 0xDA, 0xC4, 0x01, 0xFF, 0x12}
	for n := 0; n < 20000; n++ {
		b := []byte{0xFF, 0xD8}
		for len(b) < 4+rng.IntN(300) {
			switch rng.IntN(4) {
			case 0: // a segment header with a small length
				b = append(b, 0xFF, pick[rng.IntN(len(pick))], 0, byte(rng.IntN(8)))
			default:
				b = append(b, pick[rng.IntN(len(pick))])
			}
		}
		b = b[:2+rng.IntN(len(b)-1)]
		if got, want := jpegScans(b, 5), jpegScansBytewise(b, 5); got != want {
			t.Fatalf("% x: %d scans, bytewise %d", b, got, want)
		}
	}
}

// libjpeg-turbo decodes into a buffer sized from the header Inspect read: a
// header that disagrees with the file (it cannot, through Pixels, but the
// buffer's size rests on it) fails cleanly at every DCT scale, never writing
// past the buffer.
func TestJPEGTurboRefusesHeaderOfAnotherSize(t *testing.T) {
	if !LibjpegTurbo {
		t.Skip("built without libjpeg-turbo (purego)")
	}
	var b bytes.Buffer
	_ = jpeg.Encode(&b, testimg.PatternImage(200, 150), &jpeg.Options{Quality: 90})
	for _, denom := range []int{1, 2, 4, 8} {
		good := Header{Format: "jpeg", Width: 200, Height: 150}
		img, err := decodeJPEGTurbo(context.Background(), b.Bytes(), good, denom, 0)
		if err != nil || img.W != (200+denom-1)/denom || img.H != (150+denom-1)/denom {
			t.Fatalf("1/%d: %v", denom, err)
		}
		for _, h := range []Header{{Width: 100, Height: 150}, {Width: 200, Height: 300}, {Width: 1, Height: 1}} {
			_, err := decodeJPEGTurbo(context.Background(), b.Bytes(), h, denom, 0)
			if !errors.Is(err, ErrCorruptImage) || !strings.Contains(err.Error(), "header said") {
				t.Errorf("1/%d, header %dx%d: %v, want a corrupt-image error", denom, h.Width, h.Height, err)
			}
		}
	}
	// The size is checked before a progressive file's scans are read: with a
	// limit of 1 scan, the mismatch is what stops it, not the limit.
	_, err := decodeJPEGTurbo(context.Background(), bombs.ProgressiveJPEG(64, 64, 100, false), Header{Width: 65, Height: 64}, 1, 1)
	if err == nil || !strings.Contains(err.Error(), "header said") {
		t.Errorf("progressive file, wrong header: %v, want the size mismatch before any scan", err)
	}
}
