package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"catsdogs/api/b64"
)

// An image may arrive in three forms besides nothing at all: a multipart
// form (Bruno, Swagger UI, curl -F), the raw body (curl --data-binary, a
// fetch() of a Blob) or JSON with base64 (what browser and serverless
// callers usually hold). The format is always sniffed from the bytes, so
// the declared image type only routes the body.
type bodyForm int

const (
	formOther bodyForm = iota
	formMultipart
	formRaw
	formJSON
)

// acceptedForms is how the 415 answer names them.
const acceptedForms = `multipart/form-data with the image in the field "file", the image itself as the body ` +
	`(Content-Type image/jpeg, image/png, ... or application/octet-stream), or application/json `

func formOf(r *http.Request) bodyForm {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case err != nil:
		return formOther
	case mt == "multipart/form-data":
		return formMultipart
	case strings.HasPrefix(mt, "image/"), mt == "application/octet-stream":
		return formRaw
	case mt == "application/json":
		return formJSON
	}
	return formOther
}

// unsupportedForm is the 415 for any other Content-Type; example is the
// JSON body the route takes.
func unsupportedForm(r *http.Request, example string) error {
	return detailed{errNotMultipart, fmt.Sprintf("send %s%s (got Content-Type %q)",
		acceptedForms, example, r.Header.Get("Content-Type"))}
}

// readUploadBody returns /upload's one image, whatever its form.
func readUploadBody(r *http.Request, buf *bodyBuffer) ([]byte, error) {
	switch formOf(r) {
	case formMultipart:
		return readFilePart(r, buf)
	case formRaw:
		return readRawBody(r, buf)
	case formJSON:
		var body struct {
			Image json.RawMessage `json:"image"`
		}
		if err := readJSON(r, buf, &body); err != nil {
			return nil, err
		}
		if body.Image == nil || string(body.Image) == "null" {
			return nil, detailed{errFileMissing, `JSON field "image" is required: {"image": "<base64>"}`}
		}
		return jsonImage(body.Image, `"image"`)
	}
	return nil, unsupportedForm(r, `{"image": "<base64>"}`)
}

// readFileParts streams a multipart body into buf and returns its "file"
// parts, empty ones included (/predict words their error per image); other
// fields are skipped. Streaming (instead of ParseMultipartForm) keeps
// uploads off disk and stops reading at the size cap. The body is read to
// its end, so that an image past max is refused (tooMany) as soon as its
// part begins, never dropped silently; missing words the refusal of a body
// without any. All parts share buf, whose memory is reserved as it grows.
func readFileParts(r *http.Request, buf *bodyBuffer, max int, tooMany error, missing string) ([]filePart, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, malformed(err)
	}
	type span struct {
		name       string
		start, end int
	}
	var spans []span
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, malformed(err)
		}
		if part.FormName() != "file" {
			part.Close()
			continue
		}
		if len(spans) == max {
			return nil, tooMany
		}
		start := buf.Len()
		if err := buf.readFrom(part); err != nil {
			return nil, malformed(err)
		}
		spans = append(spans, span{clip(part.FileName(), 255), start, buf.Len()})
	}
	if len(spans) == 0 {
		return nil, detailed{errFileMissing, missing}
	}
	// Sliced only now: the buffer may have moved while it grew.
	all := buf.bytes()
	parts := make([]filePart, len(spans))
	for i, s := range spans {
		parts[i] = filePart{filename: s.name, data: all[s.start:s.end:s.end]}
	}
	return parts, nil
}

// readFilePart is /upload's one "file" part, which must not be empty.
func readFilePart(r *http.Request, buf *bodyBuffer) ([]byte, error) {
	parts, err := readFileParts(r, buf, 1, detailed{errFileMultiple,
		"send one image per request: the body has more than one \"file\" part (POST /predict takes several)"},
		"multipart field \"file\" is required")
	if err != nil {
		return nil, err
	}
	if len(parts[0].data) == 0 {
		return nil, detailed{errFileEmpty, "the \"file\" part is empty"}
	}
	return parts[0].data, nil
}

// readPredictBody returns /predict's images, whatever their form: every
// "file" part, the one raw image, or JSON's "images" list. An image that
// could not be had (empty, bad base64) carries its own error.
func readPredictBody(r *http.Request, buf *bodyBuffer, maxFiles int) ([]filePart, error) {
	switch formOf(r) {
	case formMultipart:
		return readFileParts(r, buf, maxFiles, tooManyFiles{maxFiles},
			"send one or more images, each in a multipart part named \"file\"")
	case formRaw:
		data, err := readRawBody(r, buf)
		if err != nil {
			return nil, err
		}
		return []filePart{{data: data}}, nil
	case formJSON:
		var body struct {
			Images []json.RawMessage `json:"images"`
		}
		if err := readJSON(r, buf, &body); err != nil {
			return nil, err
		}
		if len(body.Images) == 0 {
			return nil, detailed{errFileMissing, `JSON field "images" is required, a list of one or more base64 strings: {"images": ["<base64>", ...]}`}
		}
		if len(body.Images) > maxFiles {
			return nil, tooManyFiles{maxFiles}
		}
		parts := make([]filePart, len(body.Images))
		for i, lit := range body.Images {
			parts[i].data, parts[i].err = jsonImage(lit, fmt.Sprintf(`"images"[%d]`, i))
		}
		return parts, nil
	}
	return nil, unsupportedForm(r, `{"images": ["<base64>", ...]}`)
}

// readRawBody reads the whole body as one image.
func readRawBody(r *http.Request, buf *bodyBuffer) ([]byte, error) {
	if err := buf.readFrom(r.Body); err != nil {
		return nil, malformed(err)
	}
	if buf.Len() == 0 {
		return nil, detailed{errFileEmpty, "the request body is empty: send the image's bytes"}
	}
	return buf.bytes(), nil
}

// readJSON reads the body into buf and decodes it into v. Decoding copies
// the base64 text and then decodes it: both are reserved from the memory
// budget with the body (twice its size bounds them) before they are made.
func readJSON(r *http.Request, buf *bodyBuffer, v any) error {
	if err := buf.readFrom(r.Body); err != nil {
		return malformed(err)
	}
	if err := buf.reserve(2 * int64(buf.Len())); err != nil {
		return err
	}
	if err := json.Unmarshal(buf.bytes(), v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return detailed{errBadJSON, fmt.Sprintf("JSON field %q cannot be a %s", typeErr.Field, typeErr.Value)}
		}
		return detailed{errBadJSON, "the body is not valid JSON: " + strings.TrimPrefix(err.Error(), "json: ")}
	}
	return nil
}

// jsonImage decodes one base64 image of a JSON body; what names it in errors.
func jsonImage(lit json.RawMessage, what string) ([]byte, error) {
	data, err := b64.DecodeJSON(lit)
	switch {
	case errors.Is(err, b64.ErrNotString):
		return nil, detailed{errBadJSON, what + " must be a string of base64"}
	case err != nil:
		return nil, detailed{errBadJSON, fmt.Sprintf("%s is %v", what, err)}
	case len(data) == 0:
		return nil, detailed{errFileEmpty, what + " is empty"}
	}
	return data, nil
}
