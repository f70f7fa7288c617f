//go:build linux

// End-to-end tests of /predict (several images per request) and dynamic
// batching (concurrent requests sharing ONNX Runtime runs), on the real
// binary with real photos.

package tests

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
)

type predictAnswer struct {
	Results []struct {
		Index    int    `json:"index"`
		Filename string `json:"filename"`
		prediction
		InferenceBatch int    `json:"inference_batch"`
		Error          string `json:"error"`
		Detail         string `json:"detail"`
		Status         int    `json:"status"`
	} `json:"results"`
	Count, Failed int
}

// Each image of a /predict request gets the answer /upload gives it alone;
// a bad image gets its own error without failing the others.
func TestPredictMatchesUpload(t *testing.T) {
	token := "Bearer " + iss.Token(nil)
	var parts []formPart
	var alone []prediction
	for _, class := range []string{"cat", "dog", "other"} {
		for i := 0; i < 3; i++ {
			data := photo(t, class, i)
			parts = append(parts, formPart{field: "file", filename: fmt.Sprintf("%s%d.jpg", class, i), ctype: "image/jpeg", data: data})
			resp, body := upload(t, mainSrv, token, "photo.jpg", data)
			alone = append(alone, wantPrediction(t, resp, body))
		}
	}
	bad := len(parts)
	parts = append(parts, formPart{field: "file", filename: "notes.txt", data: []byte("hello, not an image")})
	body, ct := multipartBody(parts...)
	resp, raw := do(t, mainSrv, "POST", "/predict", token, body, ct)
	wantStatus(t, resp, raw, http.StatusOK)
	var got predictAnswer
	mustJSON(t, raw, &got)
	if got.Count != len(parts) || got.Failed != 1 || len(got.Results) != len(parts) {
		t.Fatalf("count %d failed %d results %d, want %d, 1, %d", got.Count, got.Failed, len(got.Results), len(parts), len(parts))
	}
	for i, it := range got.Results {
		if it.Index != i || it.Filename != parts[i].filename {
			t.Errorf("item %d: index %d filename %q", i, it.Index, it.Filename)
		}
		if i == bad {
			if it.Status != 415 || it.Error != "unsupported_image" || it.Prediction != "" {
				t.Errorf("text file: %+v", it)
			}
			continue
		}
		if it.Error != "" || it.Prediction != alone[i].Prediction {
			t.Errorf("%s: %q (error %q) in /predict, %q from /upload", parts[i].filename, it.Prediction, it.Error, alone[i].Prediction)
			continue
		}
		for k := range it.Values {
			if d := math.Abs(it.Values[k] - alone[i].Values[k]); d > 1e-4 {
				t.Errorf("%s: p[%d] %.6f in /predict, %.6f from /upload", parts[i].filename, k, it.Values[k], alone[i].Values[k])
			}
		}
	}
	wantNoServerErrors(t, mainSrv)
}

// Concurrent /upload requests share runs when batching is on (and never
// when it is off), with the same answers, and /metrics counts the sizes.
func TestDynamicBatchingOverHTTP(t *testing.T) {
	on, err := launch("batching", map[string]string{"AUTH_DISABLED": "true", "BATCH_MAX_SIZE": "4", "BATCH_MAX_DELAY": "200ms", "INFERENCE_WORKERS": "2"})
	if err != nil {
		t.Fatal(err)
	}
	defer on.stop()
	off, err := launch("no-batching", map[string]string{"AUTH_DISABLED": "true", "BATCH_MAX_SIZE": "1"})
	if err != nil {
		t.Fatal(err)
	}
	defer off.stop()
	for _, s := range []*server{on, off} {
		if err := s.waitReady(readyTimeout); err != nil {
			t.Fatalf("%v\n%s", err, s.logs.String())
		}
	}
	images := [][]byte{photo(t, "cat", 0), photo(t, "dog", 0), photo(t, "other", 0), photo(t, "cat", 1),
		photo(t, "dog", 1), photo(t, "other", 1), photo(t, "cat", 2), photo(t, "dog", 2)}
	type answer struct {
		prediction
		InferenceBatch int `json:"inference_batch"`
	}
	run := func(s *server) []answer {
		out := make([]answer, len(images))
		var wg sync.WaitGroup
		for i, data := range images {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, body := upload(t, s, "", "photo.jpg", data)
				wantPrediction(t, resp, body)
				_ = json.Unmarshal(body, &out[i])
			}()
		}
		wg.Wait()
		return out
	}
	batched, single := run(on), run(off)
	shared := 0
	for i := range images {
		if batched[i].Prediction != single[i].Prediction || math.Abs(batched[i].Values[0]-single[i].Values[0]) > 1e-4 {
			t.Errorf("image %d: %s %v batched, %s %v alone", i, batched[i].Prediction, batched[i].Values, single[i].Prediction, single[i].Values)
		}
		if single[i].InferenceBatch != 1 {
			t.Errorf("BATCH_MAX_SIZE=1: image %d ran in a batch of %d", i, single[i].InferenceBatch)
		}
		if b := batched[i].InferenceBatch; b > 1 && b <= 4 {
			shared++
		} else if b > 4 || b < 1 {
			t.Errorf("BATCH_MAX_SIZE=4: image %d ran in a batch of %d", i, b)
		}
	}
	if shared == 0 {
		t.Error("8 concurrent uploads with BATCH_MAX_DELAY=200ms never shared a run")
	}
	_, metrics := do(t, on, "GET", "/metrics", "", nil, "")
	if !strings.Contains(string(metrics), "catsdogs_inference_batch_images_count 8") {
		t.Errorf("/metrics lacks the 8 images in catsdogs_inference_batch_images:\n%s", grepLines(string(metrics), "batch"))
	}
	wantNoServerErrors(t, on)
	wantNoServerErrors(t, off)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
