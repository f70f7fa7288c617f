package decode

import (
	"bytes"
	"catsdogs/tests/bombs"
	"catsdogs/tests/pets"
	"catsdogs/tests/testimg"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"math/rand"
	"runtime"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

// quadColours are the upright image's quadrants: top-left, top-right,
// bottom-left, bottom-right.
var quadColours = [4][3]uint8{{220, 30, 30}, {30, 200, 40}, {30, 40, 220}, {240, 230, 30}}

// storedForOrientation builds the pixels a camera would store for an upright
// 64x32 four-colour image tagged with EXIF orientation o. It follows the
// TIFF/EXIF definition of each value, (where the 0th row goes, where the 0th
// column goes), not the decoder's code:
//
//	1 top/left  2 top/right  3 bottom/right  4 bottom/left
//	5 left/top  6 right/top  7 right/bottom  8 left/bottom
func storedForOrientation(o int) *image.NRGBA {
	const W, H = 64, 32 // upright size
	quad := func(x, y int) [3]uint8 { return quadColours[(y/(H/2))*2+x/(W/2)] }
	sw, sh := W, H
	if o >= 5 {
		sw, sh = H, W
	}
	img := image.NewNRGBA(image.Rect(0, 0, sw, sh))
	for sy := 0; sy < sh; sy++ {
		for sx := 0; sx < sw; sx++ {
			var dx, dy int
			switch o {
			case 1, 2, 3, 4: // stored rows are display rows
				dy, dx = sy, sx
				if o == 3 || o == 4 { // 0th row at the bottom
					dy = H - 1 - sy
				}
				if o == 2 || o == 3 { // 0th column on the right
					dx = W - 1 - sx
				}
			default: // stored rows are display columns
				dx, dy = sy, sx
				if o == 6 || o == 7 { // 0th row on the right
					dx = W - 1 - sy
				}
				if o == 7 || o == 8 { // 0th column at the bottom
					dy = H - 1 - sx
				}
			}
			c := quad(dx, dy)
			img.SetNRGBA(sx, sy, color.NRGBA{c[0], c[1], c[2], 255})
		}
	}
	return img
}

// exifTIFF builds a minimal TIFF header + IFD0 holding an orientation tag,
// preceded by a Make entry so the parser has to walk the IFD.
func exifTIFF(order binary.ByteOrder, orientation int) []byte {
	var b bytes.Buffer
	if order == binary.LittleEndian {
		b.WriteString("II")
	} else {
		b.WriteString("MM")
	}
	w16 := func(v uint16) { _ = binary.Write(&b, order, v) }
	w32 := func(v uint32) { _ = binary.Write(&b, order, v) }
	w16(42)
	w32(8) // IFD0 offset
	w16(2) // entries
	// 0x010F Make, ASCII, 4 bytes inline.
	w16(0x010F)
	w16(2)
	w32(4)
	b.WriteString("Go\x00\x00")
	// 0x0112 Orientation, SHORT, count 1, value left-justified in 4 bytes.
	w16(0x0112)
	w16(3)
	w32(1)
	w16(uint16(orientation))
	w16(0)
	w32(0) // no next IFD
	return b.Bytes()
}

// withAPP1 inserts an APP1 segment right after SOI.
func withAPP1(jpg, payload []byte) []byte {
	seg := []byte{0xFF, 0xE1, byte((len(payload) + 2) >> 8), byte(len(payload) + 2)}
	out := append([]byte{}, jpg[:2]...)
	out = append(out, seg...)
	out = append(out, payload...)
	return append(out, jpg[2:]...)
}

func exifJPEG(t testing.TB, img image.Image, order binary.ByteOrder, orientation int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 100}); err != nil {
		t.Fatal(err)
	}
	return withAPP1(buf.Bytes(), append([]byte("Exif\x00\x00"), exifTIFF(order, orientation)...))
}

// blockMean averages an 8x8 block centred on (cx, cy).
func blockMean(m *RGB, cx, cy int) [3]int {
	var s [3]int
	for y := cy - 4; y < cy+4; y++ {
		for x := cx - 4; x < cx+4; x++ {
			p := m.at(x, y)
			for c := 0; c < 3; c++ {
				s[c] += int(p[c])
			}
		}
	}
	for c := range s {
		s[c] /= 64
	}
	return s
}

func checkQuadrants(t *testing.T, name string, m *RGB) {
	t.Helper()
	if m.W != 64 || m.H != 32 {
		t.Fatalf("%s: decoded %dx%d, want upright 64x32", name, m.W, m.H)
	}
	centres := [4][2]int{{16, 8}, {48, 8}, {16, 24}, {48, 24}}
	for q, c := range centres {
		got := blockMean(m, c[0], c[1])
		for ch := 0; ch < 3; ch++ {
			if d := got[ch] - int(quadColours[q][ch]); d < -12 || d > 12 {
				t.Fatalf("%s: quadrant %d is %v, want about %v", name, q, got, quadColours[q])
			}
		}
	}
}

func TestDecodeEXIFOrientation(t *testing.T) {
	for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		for o := 1; o <= 8; o++ {
			data := exifJPEG(t, storedForOrientation(o), order, o)
			if got := jpegOrientation(data); got != o {
				t.Fatalf("%v orientation %d: jpegOrientation says %d", order, o, got)
			}
			img, format, err := Decode(data, Options{})
			if err != nil || format != "jpeg" {
				t.Fatalf("%v orientation %d: Decode: %v %q", order, o, err, format)
			}
			checkQuadrants(t, "Decode "+order.String()+" o="+string(rune('0'+o)), img)
			std, err := PureGo(data)
			if err != nil {
				t.Fatal(err)
			}
			checkQuadrants(t, "PureGo "+order.String()+" o="+string(rune('0'+o)), std)
		}
	}
}

// Orientation values outside 1..8 and missing tags leave the image as stored.
func TestDecodeEXIFOrientationIgnoredWhenInvalid(t *testing.T) {
	for _, o := range []int{0, 9, 255, 0xFFFF} {
		data := exifJPEG(t, storedForOrientation(1), binary.BigEndian, o)
		if got := jpegOrientation(data); got != 1 {
			t.Errorf("orientation value %d: got %d, want 1", o, got)
		}
	}
	var buf bytes.Buffer
	_ = jpeg.Encode(&buf, storedForOrientation(1), nil)
	if got := jpegOrientation(buf.Bytes()); got != 1 {
		t.Errorf("no EXIF: got %d", got)
	}
}

// The orientation parser reads attacker-controlled bytes: it must never
// panic, whatever the APP1 segment holds.
func TestJPEGOrientationMalformedNeverPanics(t *testing.T) {
	good := exifJPEG(t, storedForOrientation(6), binary.LittleEndian, 6)
	tiffII := exifTIFF(binary.LittleEndian, 6)
	inputs := [][]byte{
		nil, {0xFF}, {0xFF, 0xD8}, {0xFF, 0xD8, 0xFF}, {0xFF, 0xD8, 0xFF, 0xE1},
		{0xFF, 0xD8, 0xFF, 0xE1, 0x00}, {0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x00}, {0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x01},
		{0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF, 'E', 'x', 'i', 'f'},
		withAPP1([]byte{0xFF, 0xD8, 0xFF, 0xD9}, []byte("Exif\x00\x00")),
		withAPP1([]byte{0xFF, 0xD8, 0xFF, 0xD9}, []byte("Exif\x00\x00II*\x00")),
		withAPP1([]byte{0xFF, 0xD8, 0xFF, 0xD9}, []byte("Exif\x00\x00II*\x00\xFF\xFF\xFF\xFF\x00\x00")),     // IFD offset far out
		withAPP1([]byte{0xFF, 0xD8, 0xFF, 0xD9}, []byte("Exif\x00\x00MM\x00*\x7F\xFF\xFF\xFF\x00\x00\x00")), // IFD offset near MaxInt32
		withAPP1([]byte{0xFF, 0xD8, 0xFF, 0xD9}, []byte("Exif\x00\x00II*\x00\x08\x00\x00\x00\xFF\xFF\x12")), // 65535 entries, no data
		withAPP1([]byte{0xFF, 0xD8, 0xFF, 0xD9}, []byte("Exif\x00\x00XX*\x00\x08\x00\x00\x00\x01\x00")),     // bad byte order
		withAPP1([]byte{0xFF, 0xD8, 0xFF, 0xD9}, []byte("Exif\x00\x00II*\x00\x04\x00\x00\x00\x01\x00")),     // offset inside header
		withAPP1([]byte{0xFF, 0xD8, 0xFF, 0xD9}, append([]byte("Exif\x00\x00"), tiffII[:len(tiffII)-7]...)), // cut inside the entry
		{0xFF, 0xD8, 0x00, 0x00, 0x00, 0x00},
		{0xFF, 0xD8, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, // fill bytes to the end
	}
	for i := 0; i <= len(good); i++ {
		inputs = append(inputs, good[:i])
	}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 3000; i++ {
		b := append([]byte{}, good[:min(len(good), 120)]...)
		for k := 0; k < 1+rng.Intn(4); k++ {
			b[2+rng.Intn(len(b)-2)] = byte(rng.Intn(256))
		}
		inputs = append(inputs, b)
	}
	for i, in := range inputs {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("input %d (% x...): panic %v", i, in[:min(len(in), 40)], r)
				}
			}()
			if o := jpegOrientation(in); o < 1 || o > 8 {
				t.Fatalf("input %d: orientation %d outside 1..8", i, o)
			}
		}()
	}
	if got := jpegOrientation(good); got != 6 {
		t.Fatalf("good input: %d", got)
	}
}

// FuzzJPEGOrientation runs its seeds in every `go test`; `go test -fuzz`
// explores further.
func FuzzJPEGOrientation(f *testing.F) {
	f.Add(exifJPEG(f, storedForOrientation(3), binary.BigEndian, 3)[:200])
	f.Add([]byte("\xFF\xD8\xFF\xE1\x00\x10Exif\x00\x00II*\x00\x08\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if o := jpegOrientation(b); o < 1 || o > 8 {
			t.Fatalf("orientation %d", o)
		}
	})
}

func decodeOK(t *testing.T, data []byte, wantFormat string) *RGB {
	t.Helper()
	img, format, err := Decode(data, Options{MaxPixels: 1 << 20})
	if err != nil {
		t.Fatalf("%s: %v", wantFormat, err)
	}
	if format != wantFormat {
		t.Fatalf("format %q, want %q", format, wantFormat)
	}
	return img
}

func wantPixels(t *testing.T, name string, img *RGB, want map[[2]int][3]uint8, tol int) {
	t.Helper()
	for xy, w := range want {
		got := img.at(xy[0], xy[1])
		for c := 0; c < 3; c++ {
			if d := int(got[c]) - int(w[c]); d < -tol || d > tol {
				t.Errorf("%s: pixel %v = %v, want %v", name, xy, got, w)
				break
			}
		}
	}
}

// Alpha is composited on white like preprocess.py (Pillow alpha_composite over
// an opaque white background): round(v*a/255 + 255*(1-a/255)).
func TestDecodeAlphaOnWhite(t *testing.T) {
	m := image.NewNRGBA(image.Rect(0, 0, 4, 1))
	m.SetNRGBA(0, 0, color.NRGBA{255, 0, 0, 0})     // fully transparent red -> white
	m.SetNRGBA(1, 0, color.NRGBA{255, 0, 0, 255})   // opaque red
	m.SetNRGBA(2, 0, color.NRGBA{0, 0, 255, 128})   // half blue
	m.SetNRGBA(3, 0, color.NRGBA{10, 100, 200, 51}) // 20 %
	img := decodeOK(t, testimg.PNG(m), "png")
	wantPixels(t, "NRGBA PNG", img, map[[2]int][3]uint8{
		{0, 0}: {255, 255, 255}, {1, 0}: {255, 0, 0}, {2, 0}: {127, 127, 255}, {3, 0}: {206, 224, 244},
	}, 0)

	// Palette with a transparent and a translucent entry (tRNS chunk).
	p := image.NewPaletted(image.Rect(0, 0, 3, 1), color.Palette{
		color.NRGBA{255, 0, 0, 255}, color.NRGBA{0, 0, 0, 0}, color.NRGBA{0, 255, 0, 128},
	})
	p.SetColorIndex(0, 0, 0)
	p.SetColorIndex(1, 0, 1)
	p.SetColorIndex(2, 0, 2)
	img = decodeOK(t, testimg.PNG(p), "png")
	wantPixels(t, "palette PNG", img, map[[2]int][3]uint8{{0, 0}: {255, 0, 0}, {1, 0}: {255, 255, 255}, {2, 0}: {127, 255, 127}}, 0)

	// 16-bit with alpha: same result within one level.
	m16 := image.NewNRGBA64(image.Rect(0, 0, 2, 1))
	m16.SetNRGBA64(0, 0, color.NRGBA64{0, 0, 0xFFFF, 0x8080})
	m16.SetNRGBA64(1, 0, color.NRGBA64{0x1234, 0x5678, 0x9ABC, 0xFFFF})
	img = decodeOK(t, testimg.PNG(m16), "png")
	wantPixels(t, "NRGBA64 PNG", img, map[[2]int][3]uint8{{0, 0}: {127, 127, 255}, {1, 0}: {0x12, 0x56, 0x9A}}, 1)
}

func TestDecodeFormats(t *testing.T) {
	rgba := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for y := 0; y < 16; y++ {
		for x := 0; x < 16; x++ {
			c := color.RGBA{200, 20, 20, 255}
			if x >= 8 {
				c = color.RGBA{20, 20, 200, 255}
			}
			rgba.SetRGBA(x, y, c)
		}
	}
	want := map[[2]int][3]uint8{{2, 2}: {200, 20, 20}, {12, 12}: {20, 20, 200}}

	var b bytes.Buffer
	if err := bmp.Encode(&b, rgba); err != nil {
		t.Fatal(err)
	}
	wantPixels(t, "BMP", decodeOK(t, b.Bytes(), "bmp"), want, 0)

	b.Reset()
	if err := tiff.Encode(&b, rgba, &tiff.Options{Compression: tiff.Deflate}); err != nil {
		t.Fatal(err)
	}
	wantPixels(t, "TIFF", decodeOK(t, b.Bytes(), "tiff"), want, 0)

	b.Reset()
	pal := image.NewPaletted(rgba.Bounds(), color.Palette{color.RGBA{200, 20, 20, 255}, color.RGBA{20, 20, 200, 255}})
	for y := 0; y < 16; y++ {
		for x := 8; x < 16; x++ {
			pal.SetColorIndex(x, y, 1)
		}
	}
	if err := gif.Encode(&b, pal, nil); err != nil {
		t.Fatal(err)
	}
	wantPixels(t, "GIF", decodeOK(t, b.Bytes(), "gif"), want, 0)

	wantPixels(t, "RGBA PNG", decodeOK(t, testimg.PNG(rgba), "png"), want, 0)

	// 16-bit opaque: the high byte, as Pillow reads it.
	m16 := image.NewRGBA64(image.Rect(0, 0, 1, 1))
	m16.SetRGBA64(0, 0, color.RGBA64{0x12FF, 0x3400, 0xFF80, 0xFFFF})
	wantPixels(t, "RGB 16-bit PNG", decodeOK(t, testimg.PNG(m16), "png"), map[[2]int][3]uint8{{0, 0}: {0x12, 0x34, 0xFF}}, 0)

	// Grayscale PNG (8 and 16 bit) and JPEG.
	g := image.NewGray(image.Rect(0, 0, 16, 16))
	for i := range g.Pix {
		g.Pix[i] = 77
	}
	wantPixels(t, "gray PNG", decodeOK(t, testimg.PNG(g), "png"), map[[2]int][3]uint8{{3, 3}: {77, 77, 77}}, 0)
	g16 := image.NewGray16(image.Rect(0, 0, 2, 2))
	g16.SetGray16(1, 1, color.Gray16{0xABCD})
	wantPixels(t, "gray16 PNG", decodeOK(t, testimg.PNG(g16), "png"), map[[2]int][3]uint8{{1, 1}: {0xAB, 0xAB, 0xAB}, {0, 0}: {0, 0, 0}}, 0)
	b.Reset()
	if err := jpeg.Encode(&b, g, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	img := decodeOK(t, b.Bytes(), "jpeg")
	wantPixels(t, "gray JPEG", img, map[[2]int][3]uint8{{3, 3}: {77, 77, 77}, {15, 15}: {77, 77, 77}}, 1)
	std, err := PureGo(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	wantPixels(t, "gray JPEG (pure Go)", std, map[[2]int][3]uint8{{3, 3}: {77, 77, 77}}, 1)

	// WebP (lossless, made by Pillow 9.4): 4x2, red/green/blue/transparent on
	// top, half-transparent blue then red below.
	webpAlpha, _ := base64.StdEncoding.DecodeString("UklGRjgAAABXRUJQVlA4TCwAAAAvA0AAECcgEEjaH3oNAUGR/6MJCIr8H01AUHTdcgH80uggICFT2WICEf0POQ==")
	wantPixels(t, "WebP", decodeOK(t, webpAlpha, "webp"), map[[2]int][3]uint8{
		{0, 0}: {255, 0, 0}, {1, 0}: {0, 255, 0}, {2, 0}: {0, 0, 255}, {3, 0}: {255, 255, 255},
		{0, 1}: {127, 127, 255}, {1, 1}: {255, 0, 0},
	}, 0)
}

func TestDecodeUnsupportedAndEmpty(t *testing.T) {
	for _, in := range [][]byte{nil, {}, []byte("hello, I am a text file"), []byte("%PDF-1.7\n"), []byte("<svg xmlns='http://www.w3.org/2000/svg'/>")} {
		if _, _, err := Decode(in, Options{}); !errors.Is(err, ErrUnsupportedFormat) {
			t.Errorf("%q: %v, want ErrUnsupportedFormat", in, err)
		}
	}
}

// The format comes from the bytes, so a PNG is a PNG whatever it was called,
// and a JPEG with a PNG-ish prefix is not a PNG.
func TestDecodeSniffsFormat(t *testing.T) {
	m := image.NewRGBA(image.Rect(0, 0, 8, 8))
	if _, f, err := Decode(testimg.PNG(m), Options{}); err != nil || f != "png" {
		t.Errorf("png: %q %v", f, err)
	}
	var b bytes.Buffer
	_ = jpeg.Encode(&b, m, nil)
	if _, f, err := Decode(b.Bytes(), Options{}); err != nil || f != "jpeg" {
		t.Errorf("jpeg: %q %v", f, err)
	}
}

func TestDecodeTruncatedJPEGIsCorrupt(t *testing.T) {
	photos := pets.Sample(t, repoRoot, 2)
	var b bytes.Buffer
	_ = jpeg.Encode(&b, testimg.PatternImage(200, 150), &jpeg.Options{Quality: 90})
	inputs := [][]byte{b.Bytes()}
	for _, p := range photos {
		inputs = append(inputs, pets.Read(t, p))
	}
	for i, data := range inputs {
		for _, frac := range []float64{0.05, 0.3, 0.6, 0.9, 0.99} {
			cut := data[:int(float64(len(data))*frac)]
			_, _, err := Decode(cut, Options{})
			if !errors.Is(err, ErrCorruptImage) {
				t.Errorf("input %d cut at %.0f%% (fast path %v): %v, want ErrCorruptImage", i, frac*100, LibjpegTurbo, err)
			}
			// The scaled fast path stops early; truncation must still be caught.
			if _, _, err := Decode(cut, Options{MinW: 16, MinH: 16}); !errors.Is(err, ErrCorruptImage) {
				t.Errorf("input %d cut at %.0f%% (DCT-scaled): %v, want ErrCorruptImage", i, frac*100, err)
			}
			if _, err := PureGo(cut); err == nil {
				t.Errorf("input %d cut at %.0f%%: PureGo succeeded", i, frac*100)
			}
		}
	}
}

func TestDecodeHugeDimensionsRefusedBeforeAllocation(t *testing.T) {
	huge := bombs.PNGHeader(100_000, 100_000) // 10 gigapixels: 30 GB if decoded
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, format, err := Decode(huge, Options{MaxPixels: 50_000_000})
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrImageTooLarge) || format != "png" {
		t.Fatalf("got %v (%q), want ErrImageTooLarge", err, format)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Errorf("allocated %d bytes before refusing", grew)
	}
	// Just over the limit is refused, at the limit is decoded.
	m := image.NewRGBA(image.Rect(0, 0, 100, 50))
	if _, _, err := Decode(testimg.PNG(m), Options{MaxPixels: 4999}); !errors.Is(err, ErrImageTooLarge) {
		t.Errorf("5000 px with MaxPixels 4999: %v", err)
	}
	if _, _, err := Decode(testimg.PNG(m), Options{MaxPixels: 5000}); err != nil {
		t.Errorf("5000 px with MaxPixels 5000: %v", err)
	}

	// A JPEG whose SOF claims 60000x60000 (patched into a real small JPEG).
	var b bytes.Buffer
	_ = jpeg.Encode(&b, m, nil)
	j := append([]byte{}, b.Bytes()...)
	for i := 2; i+9 < len(j); i++ {
		if j[i] == 0xFF && j[i+1] == 0xC0 {
			binary.BigEndian.PutUint16(j[i+5:], 60000)
			binary.BigEndian.PutUint16(j[i+7:], 60000)
			break
		}
	}
	if _, _, err := Decode(j, Options{MaxPixels: 50_000_000}); !errors.Is(err, ErrImageTooLarge) {
		t.Errorf("JPEG claiming 60000x60000: %v, want ErrImageTooLarge", err)
	}
}

// The fast path decodes at the smallest DCT scale that still covers the
// requested size, measured on the upright image.
func TestDecodeDCTScaleCoversMinimum(t *testing.T) {
	if !LibjpegTurbo {
		t.Skip("built without libjpeg-turbo (purego)")
	}
	var b bytes.Buffer
	_ = jpeg.Encode(&b, testimg.PatternImage(1024, 768), &jpeg.Options{Quality: 90})
	plain := b.Bytes()
	for _, c := range []struct {
		minW, minH, w, h int
	}{
		{0, 0, 1024, 768},     // no minimum: full size
		{128, 96, 128, 96},    // 1/8
		{128, 128, 256, 192},  // 1/4: 1/8 would be 96 high
		{300, 100, 512, 384},  // 1/2
		{1000, 10, 1024, 768}, // full
		{2000, 2000, 1024, 768},
	} {
		img, _, err := Decode(plain, Options{MinW: c.minW, MinH: c.minH})
		if err != nil {
			t.Fatal(err)
		}
		if img.W != c.w || img.H != c.h {
			t.Errorf("min %dx%d: decoded %dx%d, want %dx%d", c.minW, c.minH, img.W, img.H, c.w, c.h)
		}
	}
	// Stored 1024x768 with orientation 6 is upright 768x1024; a 200x100
	// minimum on the upright image needs the 1/2 scale (384x512), not 1/4
	// (192x256, too narrow once rotated).
	rotated := withAPP1(plain, append([]byte("Exif\x00\x00"), exifTIFF(binary.BigEndian, 6)...))
	img, _, err := Decode(rotated, Options{MinW: 200, MinH: 100})
	if err != nil {
		t.Fatal(err)
	}
	if img.W != 384 || img.H != 512 {
		t.Errorf("rotated: decoded %dx%d, want 384x512", img.W, img.H)
	}
}

// An Adobe CMYK JPEG (as Pillow 9.4 writes it: inverted, APP14 "Adobe"),
// 16x16 in four CMYK quadrants; want is Pillow's convert("RGB") of it.
const cmykJPEG = "/9j/7gAOQWRvYmUAZAAAAAAA/9sAQwABAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB/8AAFAgAEAAQBEMRAE0RAFkRAEsRAP/EAB8AAAEFAQEBAQEBAAAAAAAAAAABAgMEBQYHCAkKC//EALUQAAIBAwMCBAMFBQQEAAABfQECAwAEEQUSITFBBhNRYQcicRQygZGhCCNCscEVUtHwJDNicoIJChYXGBkaJSYnKCkqNDU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6g4SFhoeIiYqSk5SVlpeYmZqio6Slpqeoqaqys7S1tre4ubrCw8TFxsfIycrS09TV1tfY2drh4uPk5ebn6Onq8fLz9PX29/j5+v/aAA4EQwBNAFkASwAAPwD+bev7CK/uor+1iv8AXwr/ADT6+D6/L+vl+v8ARgr+I+v2Qr7wr9QK/wBLCv8AIPr/2Q=="

func TestDecodeCMYKJPEG(t *testing.T) {
	data, err := base64.StdEncoding.DecodeString(cmykJPEG)
	if err != nil {
		t.Fatal(err)
	}
	want := map[[2]int][3]uint8{{4, 4}: {51, 207, 226}, {12, 4}: {187, 57, 164}, {4, 12}: {216, 207, 101}, {12, 12}: {55, 55, 55}}
	tol := 2
	if LibjpegTurbo {
		tol = 0 // libjpeg-turbo decodes as Pillow does
	}
	wantPixels(t, "CMYK JPEG", decodeOK(t, data, "jpeg"), want, tol)
	std, err := PureGo(data)
	if err != nil {
		t.Fatal(err)
	}
	wantPixels(t, "CMYK JPEG (pure Go)", std, want, 2)
}

// repoRoot is the repository root seen from model/decode, where tests run.
const repoRoot = "../.."

func (m *RGB) at(x, y int) [3]uint8 {
	i := (y*m.W + x) * 3
	return [3]uint8{m.Pix[i], m.Pix[i+1], m.Pix[i+2]}
}
