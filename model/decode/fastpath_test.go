package decode_test

import (
	"path/filepath"
	"sync"
	"testing"

	"catsdogs/model/decode"
	"catsdogs/model/preprocess"
	"catsdogs/model/spec"
	"catsdogs/tests/pets"
	"catsdogs/tests/testspec"
)

// These tests compare the two decoders after preprocessing, what the model
// sees: an external test package, since preprocess imports decode.

// repoRoot is the repository root seen from model/decode, where tests run.
const repoRoot = "../.."

// pixelDiff compares two raw-spec tensors (values are 0..255 pixels).
func pixelDiff(a, b []float32) (mean float64, maxd int) {
	m, x := testspec.TensorDiff(a, b)
	return m, int(x)
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
	photos := pets.Sample(tb, repoRoot, 1)
	bigJPEGOnce.Do(func() { bigJPEG, bigJPEGErr = pets.Upscaled(photos[0], 4032, 3024, 90) })
	if bigJPEGErr != nil {
		tb.Fatal(bigJPEGErr)
	}
	return bigJPEG
}

// The libjpeg-turbo path (fancy upsampling, as Pillow) and Go's decoder
// (simpler chroma upsampling) differ by a few levels per pixel on real photos;
// after preprocessing the tensors must still agree closely.
func TestFastAndPureGoDecodeAgreeOnRealPhotos(t *testing.T) {
	if !decode.LibjpegTurbo {
		t.Skip("built without libjpeg-turbo (purego): both paths are the same decoder")
	}
	photos := pets.Sample(t, repoRoot, 4)
	norm := preprocess.New(testspec.ImageNet(128))
	raw := preprocess.New(testspec.Raw(128, 128, spec.ResizeCenterCrop))
	a, b := make([]float32, norm.TensorLen()), make([]float32, norm.TensorLen())
	ra, rb := make([]float32, raw.TensorLen()), make([]float32, raw.TensorLen())
	var worstMean float64
	var worstMax int
	for _, p := range photos {
		data := pets.Read(t, p)
		fast, _, err := decode.Decode(data, norm.DecodeOptions(0))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		std, err := decode.PureGo(data)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		norm.Fill(a, fast)
		norm.Fill(b, std)
		raw.Fill(ra, fast)
		raw.Fill(rb, std)
		mad, _ := testspec.TensorDiff(a, b)
		pm, pmax := pixelDiff(ra, rb)
		t.Logf("%-28s %dx%d (decoded %dx%d): normalised MAD %.4f, pixels mean %.2f max %d",
			filepath.Base(p), std.W, std.H, fast.W, fast.H, mad, pm, pmax)
		if mad > 0.05 {
			t.Errorf("%s: mean |fast - pure Go| = %.4f in normalised units, want < 0.05", p, mad)
		}
		if pmax > 64 {
			t.Errorf("%s: a preprocessed pixel differs by %d levels, want <= 64", p, pmax)
		}
		worstMean, worstMax = max(worstMean, mad), max(worstMax, pmax)
	}
	t.Logf("worst over %d photos: normalised MAD %.4f, max pixel diff %d", len(photos), worstMean, worstMax)
}

// A 12 MP upload takes the 1/8 DCT-scaled decode; its tensor must stay close
// to a full-resolution pure-Go decode resized with the same Pillow filter.
func TestFastDCTScaledAgreesWithFullDecodeOnBigPhoto(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds a 12 MP JPEG")
	}
	data := unitBigJPEG(t)
	for _, size := range []int{128, 224} {
		norm := preprocess.New(testspec.ImageNet(size))
		raw := preprocess.New(testspec.Raw(size, size, spec.ResizeCenterCrop))
		fast, _, err := decode.Decode(data, norm.DecodeOptions(0))
		if err != nil {
			t.Fatal(err)
		}
		std, err := decode.PureGo(data)
		if err != nil {
			t.Fatal(err)
		}
		if std.W != 4032 || std.H != 3024 {
			t.Fatalf("pure Go decoded %dx%d", std.W, std.H)
		}
		if decode.LibjpegTurbo && (fast.W >= 4032 || fast.W < size) {
			t.Errorf("size %d: fast path decoded %dx%d; want a DCT-scaled size >= %d", size, fast.W, fast.H, size)
		}
		a, b := make([]float32, norm.TensorLen()), make([]float32, norm.TensorLen())
		norm.Fill(a, fast)
		norm.Fill(b, std)
		mad, maxd := testspec.TensorDiff(a, b)
		ra, rb := make([]float32, raw.TensorLen()), make([]float32, raw.TensorLen())
		raw.Fill(ra, fast)
		raw.Fill(rb, std)
		pm, pmax := pixelDiff(ra, rb)
		t.Logf("size %d: fast decoded %dx%d vs full %dx%d: normalised MAD %.4f max %.3f; pixels mean %.2f max %d",
			size, fast.W, fast.H, std.W, std.H, mad, maxd, pm, pmax)
		if mad > 0.05 {
			t.Errorf("size %d: normalised MAD %.4f, want < 0.05", size, mad)
		}
		if pmax > 64 {
			t.Errorf("size %d: max pixel diff %d, want <= 64", size, pmax)
		}

		// Skew against what training sees (a full-size libjpeg decode, as
		// Pillow does): how much the DCT shortcut alone changes the tensor.
		if decode.LibjpegTurbo {
			full, _, err := decode.Decode(data, decode.Options{})
			if err != nil {
				t.Fatal(err)
			}
			norm.Fill(b, full)
			mad, maxd = testspec.TensorDiff(a, b)
			t.Logf("size %d: DCT-scaled vs full-size libjpeg decode: normalised MAD %.4f max %.3f", size, mad, maxd)
		}
	}
}
