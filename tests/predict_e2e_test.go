//go:build linux

// End-to-end tests of predictions: real photos, parity with training over
// HTTP, every image format, and client errors (4xx with a JSON body, never a
// 5xx, the server still healthy afterwards).

package tests

import (
	"bytes"
	"catsdogs/tests/bombs"
	"catsdogs/tests/pets"
	"catsdogs/tests/testimg"
	"catsdogs/tests/testmodel"
	"fmt"
	"image"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

func TestRealPhotos(t *testing.T) {
	tok := "Bearer " + iss.Token(nil)
	var wrong []string
	for _, class := range []string{"cat", "dog", "other"} {
		want := strings.ToUpper(class[:1]) + class[1:]
		for i, path := range testPhotos(t, class, 3) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			name := fmt.Sprintf("%s/%d", class, i)
			t.Run(name, func(t *testing.T) {
				resp, body := upload(t, mainSrv, tok, filepath.Base(path), data)
				p := wantPrediction(t, resp, body)
				if p.Image.Format != "jpeg" {
					t.Errorf("image.format = %q, want jpeg", p.Image.Format)
				}
				if p.Prediction != want {
					wrong = append(wrong, fmt.Sprintf("%s: %s (%.3f), want %s", rel(path), p.Prediction, p.Confidence, want))
				}
			})
		}
	}
	switch {
	case len(wrong) == 0:
	case smokeModel:
		t.Logf("CATSDOGS_TEST_MODEL is set (untrained model?): not checking accuracy; %d/9 misclassified:\n%s",
			len(wrong), strings.Join(wrong, "\n"))
	default:
		t.Errorf("default model misclassified %d/9 test photos:\n%s", len(wrong), strings.Join(wrong, "\n"))
	}
}

// TestParityOverHTTP uploads the images named in the model's parity file
// (written by the training pipeline next to the .onnx) and checks the served
// probabilities against the ones PyTorch computed: the whole serving path
// (multipart, decode, preprocess, ONNX Runtime, softmax, JSON) must agree
// with training, whatever the model's accuracy. Where the int8 copy is
// served (MODEL_PRECISION=auto on a CPU it is faster on), within what
// quantization moves: the same label, logits within testmodel.Int8LogitTol.
func TestParityOverHTTP(t *testing.T) {
	var info struct {
		Precision struct {
			Served string `json:"served"`
		} `json:"precision"`
	}
	_, mb := do(t, mainSrv, "GET", "/model", "", nil, "")
	mustJSON(t, mb, &info)
	int8 := info.Precision.Served == "int8"
	t.Logf("the server serves the %s model", info.Precision.Served)
	var pf struct {
		Atol   float64 `json:"atol"`
		Images []struct {
			File          string    `json:"file"`
			Probabilities []float64 `json:"probabilities"`
		} `json:"images"`
	}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(modelPath), "parity.json"))
	if err != nil {
		t.Fatalf("parity file next to the model: %v", err)
	}
	mustJSON(t, b, &pf)
	if len(pf.Images) == 0 {
		t.Fatal("parity file lists no images")
	}
	tok := "Bearer " + iss.Token(nil)
	checked := 0
	for _, im := range pf.Images {
		path, ok, err := pets.Find(root, im.File)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Logf("%s: only in the dataset, which is absent; not checked", im.File)
			continue
		}
		checked++
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		resp, body := upload(t, mainSrv, tok, filepath.Base(im.File), data)
		p := wantPrediction(t, resp, body)
		if len(p.Values) != len(im.Probabilities) {
			t.Fatalf("%s: %d values, parity file has %d", im.File, len(p.Values), len(im.Probabilities))
		}
		if int8 {
			if got, want := testmodel.Argmax(p.Values), testmodel.Argmax(im.Probabilities); got != want {
				t.Errorf("%s: int8 predicts %d (%v), PyTorch %d (%v)", im.File, got, p.Values, want, im.Probabilities)
			}
			if d := testmodel.LogitDistance(p.Values, im.Probabilities); d > testmodel.Int8LogitTol {
				t.Errorf("%s: int8 logits %.3f from PyTorch's (%v vs %v), more than %.2f", im.File, d, p.Values, im.Probabilities, testmodel.Int8LogitTol)
			}
			continue
		}
		for i, want := range im.Probabilities {
			if math.Abs(p.Values[i]-want) > pf.Atol {
				t.Errorf("%s: values[%d] = %.6f, PyTorch %.6f (atol %g)", im.File, i, p.Values[i], want, pf.Atol)
			}
		}
	}
	if checked == 0 {
		t.Fatalf("none of the %d parity images is in the fixtures and the dataset is absent", len(pf.Images))
	}
}

// Client errors must be 4xx with a JSON body, never 5xx, and leave the
// server healthy.
func TestUploadErrors(t *testing.T) {
	tok := "Bearer " + iss.Token(nil)
	jpg := photo(t, "cat", 0)

	t.Run("file field missing", func(t *testing.T) {
		body, ct := multipartBody(formPart{field: "other", data: []byte("hello")})
		resp, rb := do(t, mainSrv, "POST", "/upload", tok, body, ct)
		wantError(t, resp, rb, http.StatusBadRequest, "file_missing")
	})
	t.Run("no parts at all", func(t *testing.T) {
		body, ct := multipartBody()
		resp, rb := do(t, mainSrv, "POST", "/upload", tok, body, ct)
		wantError(t, resp, rb, http.StatusBadRequest, "file_missing")
	})
	t.Run("empty file", func(t *testing.T) {
		resp, rb := upload(t, mainSrv, tok, "empty.jpg", nil)
		wantError(t, resp, rb, http.StatusBadRequest, "file_empty")
	})
	t.Run("malformed multipart", func(t *testing.T) {
		resp, rb := do(t, mainSrv, "POST", "/upload", tok, []byte("this is not multipart"), "multipart/form-data; boundary=xyz")
		wantError(t, resp, rb, http.StatusBadRequest, "bad_request")
	})
	t.Run("multipart without boundary", func(t *testing.T) {
		resp, rb := do(t, mainSrv, "POST", "/upload", tok, []byte("x"), "multipart/form-data")
		wantError(t, resp, rb, http.StatusBadRequest, "bad_request")
	})
	t.Run("json body without image", func(t *testing.T) {
		resp, rb := do(t, mainSrv, "POST", "/upload", tok, []byte(`{"file":"aGVsbG8="}`), "application/json")
		wantError(t, resp, rb, http.StatusBadRequest, "file_missing")
	})
	t.Run("text body", func(t *testing.T) {
		resp, rb := do(t, mainSrv, "POST", "/upload", tok, jpg, "text/plain")
		wantError(t, resp, rb, http.StatusUnsupportedMediaType, "unsupported_media_type")
	})
	t.Run("raw body, not an image", func(t *testing.T) {
		resp, rb := do(t, mainSrv, "POST", "/upload", tok, []byte("these are notes"), "image/jpeg")
		wantError(t, resp, rb, http.StatusUnsupportedMediaType, "unsupported_image")
	})
	t.Run("raw body over MAX_UPLOAD_BYTES", func(t *testing.T) {
		resp, rb := do(t, mainSrv, "POST", "/upload", tok, make([]byte, maxUpload+1), "application/octet-stream")
		wantError(t, resp, rb, http.StatusRequestEntityTooLarge, "payload_too_large")
	})
	t.Run("text file", func(t *testing.T) {
		resp, rb := upload(t, mainSrv, tok, "notes.txt", []byte("these are notes, not an image\n"))
		wantError(t, resp, rb, http.StatusUnsupportedMediaType, "unsupported_image")
	})
	t.Run("text file named jpg", func(t *testing.T) {
		resp, rb := upload(t, mainSrv, tok, "cat.jpg", []byte("<html>not a cat</html>"))
		wantError(t, resp, rb, http.StatusUnsupportedMediaType, "unsupported_image")
	})
	t.Run("truncated jpeg", func(t *testing.T) {
		resp, rb := upload(t, mainSrv, tok, "half.jpg", jpg[:len(jpg)/2])
		wantError(t, resp, rb, http.StatusUnprocessableEntity, "corrupt_image")
	})
	t.Run("truncated png", func(t *testing.T) {
		p := testimg.PNG(decodeJPEG(t, jpg))
		resp, rb := upload(t, mainSrv, tok, "half.png", p[:len(p)/2])
		wantError(t, resp, rb, http.StatusUnprocessableEntity, "corrupt_image")
	})
	t.Run("body over MAX_UPLOAD_BYTES", func(t *testing.T) {
		big := bytes.Repeat([]byte{0xFF, 0xD8, 0xFF, 0xE0}, (maxUpload+(1<<20))/4)
		resp, rb := upload(t, mainSrv, tok, "big.jpg", big)
		wantError(t, resp, rb, http.StatusRequestEntityTooLarge, "payload_too_large")
	})
	t.Run("too many pixels", func(t *testing.T) {
		resp, rb := upload(t, mainSrv, tok, "huge.png", bombs.PNGHeader(100000, 100000))
		wantError(t, resp, rb, http.StatusRequestEntityTooLarge, "image_too_large")
	})
	t.Run("GET /upload", func(t *testing.T) {
		resp, rb := do(t, mainSrv, "GET", "/upload", tok, nil, "")
		wantError(t, resp, rb, http.StatusMethodNotAllowed, "method_not_allowed")
		if allow := resp.Header.Get("Allow"); !strings.Contains(allow, "POST") {
			t.Errorf("Allow = %q, want POST", allow)
		}
	})
	t.Run("unknown route", func(t *testing.T) {
		resp, rb := do(t, mainSrv, "GET", "/no/such/route", "", nil, "")
		wantError(t, resp, rb, http.StatusNotFound, "not_found")
	})
	t.Run("unknown route POST", func(t *testing.T) {
		resp, rb := do(t, mainSrv, "POST", "/classify", tok, []byte("x"), "text/plain")
		wantError(t, resp, rb, http.StatusNotFound, "not_found")
	})

	// Still alive and serving after all that.
	resp, body := do(t, mainSrv, "GET", "/health", "", nil, "")
	wantStatus(t, resp, body, http.StatusOK)
	resp, body = upload(t, mainSrv, tok, "cat.jpg", jpg)
	wantPrediction(t, resp, body)
	wantNoServerErrors(t, mainSrv)
}

// Image formats, generated from a real photo

func TestImageFormats(t *testing.T) {
	tok := "Bearer " + iss.Token(nil)
	src := photo(t, "cat", 0)
	img := decodeJPEG(t, src)
	b := img.Bounds()
	if b.Dx() == b.Dy() {
		t.Fatalf("want a non-square source photo to check EXIF rotation, got %v", b.Size())
	}

	// PNG with an alpha channel: a transparent frame and a half-transparent half.
	nrgba := image.NewNRGBA(b)
	draw.Draw(nrgba, b, img, b.Min, draw.Src)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			i := nrgba.PixOffset(x, y) + 3
			switch {
			case x-b.Min.X < 8 || y-b.Min.Y < 8:
				nrgba.Pix[i] = 0
			case x-b.Min.X > b.Dx()/2:
				nrgba.Pix[i] = 128
			}
		}
	}
	gray := image.NewGray(b)
	draw.Draw(gray, b, img, b.Min, draw.Src)
	paletted := encodeWith(t, func(w io.Writer) error { return gif.Encode(w, img, nil) })
	// Go cannot encode WebP or CMYK JPEG: tests/testdata/pick_fixtures.py made
	// these from the same photo with Pillow.
	made := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(root, "tests", "testdata", "formats", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	cases := []struct {
		name, filename, ctype, format string
		data                          []byte
		w, h                          int // expected upright size
	}{
		{"png with alpha", "cat.png", "image/png", "png", testimg.PNG(nrgba), b.Dx(), b.Dy()},
		{"gif", "cat.gif", "image/gif", "gif", paletted, b.Dx(), b.Dy()},
		{"bmp", "cat.bmp", "image/bmp", "bmp", encodeWith(t, func(w io.Writer) error { return bmp.Encode(w, img) }), b.Dx(), b.Dy()},
		{"tiff", "cat.tiff", "image/tiff", "tiff", encodeWith(t, func(w io.Writer) error {
			return tiff.Encode(w, img, &tiff.Options{Compression: tiff.Deflate})
		}), b.Dx(), b.Dy()},
		{"grayscale jpeg", "gray.jpg", "image/jpeg", "jpeg", encodeWith(t, func(w io.Writer) error {
			return jpeg.Encode(w, gray, &jpeg.Options{Quality: 90})
		}), b.Dx(), b.Dy()},
		{"jpeg exif orientation 6", "rotated.jpg", "image/jpeg", "jpeg", withEXIFOrientation(t, encodeWith(t, func(w io.Writer) error {
			return jpeg.Encode(w, img, &jpeg.Options{Quality: 90})
		}), 6), b.Dy(), b.Dx()},
		{"webp", "cat.webp", "image/webp", "webp", made("cat.webp"), b.Dx(), b.Dy()},
		{"cmyk jpeg", "cmyk.jpg", "image/jpeg", "jpeg", made("cat-cmyk.jpg"), b.Dx(), b.Dy()},
		{"jpeg named png", "cat.png", "image/png", "jpeg", src, b.Dx(), b.Dy()},
		{"jpeg without name or type", "", "", "jpeg", src, b.Dx(), b.Dy()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body, ct := multipartBody(formPart{field: "file", filename: c.filename, ctype: c.ctype, data: c.data})
			resp, rb := do(t, mainSrv, "POST", "/upload", tok, body, ct)
			p := wantPrediction(t, resp, rb)
			if p.Image.Format != c.format {
				t.Errorf("image.format = %q, want %q", p.Image.Format, c.format)
			}
			if p.Image.Width != c.w || p.Image.Height != c.h {
				t.Errorf("image size = %dx%d, want %dx%d (upright)", p.Image.Width, p.Image.Height, c.w, c.h)
			}
		})
	}
}
