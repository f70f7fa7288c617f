//go:build linux

// End-to-end tests of the image body forms beside multipart: the raw image
// (curl --data-binary) and base64 in JSON, on /upload and /predict.

package tests

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"
)

// The same photo sent raw, as base64 JSON, or as a form gets the same answer.
func TestRawAndJSONBodiesMatchMultipart(t *testing.T) {
	tok := "Bearer " + iss.Token(nil)
	for _, class := range []string{"cat", "dog", "other"} {
		data := photo(t, class, 0)
		resp, body := upload(t, mainSrv, tok, "photo.jpg", data)
		want := wantPrediction(t, resp, body)
		b64, _ := json.Marshal(map[string]any{"image": base64.StdEncoding.EncodeToString(data)})
		for name, req := range map[string]struct {
			body  []byte
			ctype string
		}{
			"curl --data-binary, image/jpeg": {data, "image/jpeg"},
			"application/octet-stream":       {data, "application/octet-stream"},
			"JSON base64":                    {b64, "application/json"},
		} {
			resp, body := do(t, mainSrv, "POST", "/upload", tok, req.body, req.ctype)
			got := wantPrediction(t, resp, body)
			for i := range want.Values {
				if got.Values[i] != want.Values[i] {
					t.Errorf("%s %s: values %v, multipart %v", class, name, got.Values, want.Values)
					break
				}
			}
		}
	}
	// /predict: a list of base64 images.
	images := []string{base64.StdEncoding.EncodeToString(photo(t, "cat", 1)), "not base64!", base64.StdEncoding.EncodeToString(photo(t, "dog", 1))}
	body, _ := json.Marshal(map[string]any{"images": images})
	resp, raw := do(t, mainSrv, "POST", "/predict", tok, body, "application/json")
	wantStatus(t, resp, raw, http.StatusOK)
	var got predictAnswer
	mustJSON(t, raw, &got)
	if got.Count != 3 || got.Failed != 1 || got.Results[1].Status != 400 || got.Results[1].Error != "bad_request" ||
		got.Results[0].Prediction == "" || got.Results[2].Prediction == "" {
		t.Errorf("/predict with JSON: %s", raw)
	}
	// Auth comes first whatever the form.
	resp, raw = do(t, mainSrv, "POST", "/upload", "", photo(t, "cat", 0), "image/jpeg")
	wantError(t, resp, raw, http.StatusUnauthorized, "invalid_token")
	wantNoServerErrors(t, mainSrv)
}
