package model

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"catsdogs/tests/pets"

	"golang.org/x/image/draw"
)

// Shared helpers for the model package's unit tests and benchmarks.

// repoRoot is the repository root seen from model/, where tests run.
const repoRoot = ".."

// unitModelPath returns the ONNX model the classifier tests run against:
// CATSDOGS_TEST_MODEL, else the committed default model, else "" (skip).
func unitModelPath() string {
	if p := os.Getenv("CATSDOGS_TEST_MODEL"); p != "" {
		return p
	}
	if p := "../resources/catsdogs-resnet.onnx"; fileExists(p) {
		return p
	}
	return ""
}

// unitRequireModel skips the test when no model is available.
func unitRequireModel(tb testing.TB) string {
	tb.Helper()
	p := unitModelPath()
	if p == "" {
		tb.Skip("no ONNX model: set CATSDOGS_TEST_MODEL=/path/to/model.onnx or put one at resources/catsdogs-resnet.onnx")
	}
	if !fileExists(p) {
		tb.Fatalf("CATSDOGS_TEST_MODEL=%s does not exist", p)
	}
	return p
}

// findORTLib returns ONNXRUNTIME_LIB, else the library `make ort` fetched
// (seen from the package directory), else "".
func findORTLib() string {
	if p := os.Getenv("ONNXRUNTIME_LIB"); p != "" {
		return p
	}
	if m, _ := filepath.Glob("../third_party/onnxruntime-*/libonnxruntime.so"); len(m) > 0 {
		return m[0]
	}
	return ""
}

// unitORTLib skips the test when no ONNX Runtime library is available.
func unitORTLib(tb testing.TB) string {
	tb.Helper()
	p := findORTLib()
	if p == "" {
		tb.Skip("ONNX Runtime library not found: run `make ort` or set ONNXRUNTIME_LIB")
	}
	return p
}

// unitPhotos returns up to n real photos per class from the committed
// fixtures (tests/testdata/images/test), sorted by name so runs repeat.
func unitPhotos(tb testing.TB, perClass int) []string {
	tb.Helper()
	var out []string
	for _, cl := range []string{"cat", "dog", "other"} {
		m := pets.Photos(repoRoot, cl)
		if len(m) < perClass {
			tb.Fatalf("want %d fixture photos of %s under %s, found %d", perClass, cl, pets.Fixtures(repoRoot), len(m))
		}
		out = append(out, m[:perClass]...)
	}
	return out
}

func unitReadFile(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// unitUpscaledJPEG decodes a real photo, resizes it to w x h with Catmull-Rom
// and encodes it as JPEG at the given quality: a realistic big upload made at
// test time (nothing is written into the repository).
func unitUpscaledJPEG(tb testing.TB, path string, w, h, quality int) []byte {
	tb.Helper()
	b, err := upscaledJPEG(path, w, h, quality)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func upscaledJPEG(path string, w, h, quality int) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	src, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.CatmullRom.Scale(dst, dst.Bounds(), src, src.Bounds(), draw.Src, nil)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, dst, &jpeg.Options{Quality: quality}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

var (
	bigJPEGOnce sync.Once
	bigJPEG     []byte
	bigJPEGErr  error
)

// unitBigJPEG is one real photo upscaled to 4032x3024 (12 MP) at q90, built
// once per test binary because it takes a second or two.
func unitBigJPEG(tb testing.TB) []byte {
	tb.Helper()
	photos := unitPhotos(tb, 1)
	bigJPEGOnce.Do(func() { bigJPEG, bigJPEGErr = upscaledJPEG(photos[0], 4032, 3024, 90) })
	if bigJPEGErr != nil {
		tb.Fatal(bigJPEGErr)
	}
	return bigJPEG
}

// unitTorchSpec is the training pipeline's preprocessing at the given size.
func unitTorchSpec(size int) Spec {
	return Spec{
		Labels: []string{"Cat", "Dog", "Other"}, Layout: LayoutNCHW, Width: size, Height: size,
		Resize: ResizeCenterCrop, ResizeShorter: size, ChannelOrder: OrderRGB, PixelScale: 1.0 / 255,
		Mean: [3]float32{0.485, 0.456, 0.406}, Std: [3]float32{0.229, 0.224, 0.225}, Output: OutputLogits,
	}
}

// unitRawSpec leaves pixel values untouched (value = pixel), NHWC RGB, so a
// tensor can be read back as bytes.
func unitRawSpec(w, h int, resize string) Spec {
	return Spec{
		Labels: []string{"a", "b", "c"}, Layout: LayoutNHWC, Width: w, Height: h, Resize: resize,
		ResizeShorter: max(w, h), ChannelOrder: OrderRGB, PixelScale: 1, Std: [3]float32{1, 1, 1},
		Output: OutputLogits,
	}
}

// unitSolid makes a w x h RGB image of one colour.
func unitSolid(w, h int, c [3]uint8) *RGB {
	img := &RGB{W: w, H: h, Pix: make([]uint8, w*h*3)}
	for i := 0; i < w*h; i++ {
		copy(img.Pix[3*i:], c[:])
	}
	return img
}

// unitPattern fills a deterministic, non-separable test pattern; the same
// formula generated the Pillow golden values in resample_test.go.
func unitPattern(w, h int) *RGB {
	img := &RGB{W: w, H: h, Pix: make([]uint8, w*h*3)}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			for c := 0; c < 3; c++ {
				img.Pix[(y*w+x)*3+c] = uint8((x*37 + y*91 + c*53 + x*y*7 + (x*x*3+y*y*5)*(c+1)) % 256)
			}
		}
	}
	return img
}

func (m *RGB) at(x, y int) [3]uint8 {
	i := (y*m.W + x) * 3
	return [3]uint8{m.Pix[i], m.Pix[i+1], m.Pix[i+2]}
}

// unitToImage converts an RGB to a standard image (for encoders).
func unitToImage(m *RGB) *image.NRGBA {
	out := image.NewNRGBA(image.Rect(0, 0, m.W, m.H))
	for y := 0; y < m.H; y++ {
		for x := 0; x < m.W; x++ {
			p := m.at(x, y)
			out.SetNRGBA(x, y, color.NRGBA{p[0], p[1], p[2], 255})
		}
	}
	return out
}

// tensorDiff reports the mean and max absolute difference of two tensors.
func tensorDiff(a, b []float32) (mean, maxd float64) {
	var sum float64
	for i := range a {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		sum += d
		maxd = math.Max(maxd, d)
	}
	return sum / float64(len(a)), maxd
}

// fillTensor decodes nothing: it just runs img through a fresh Preprocessor.
func fillTensor(spec Spec, img *RGB) []float32 {
	p := NewPreprocessor(spec)
	out := make([]float32, p.TensorLen())
	p.Fill(out, img)
	return out
}
