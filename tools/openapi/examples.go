package main

import "catsdogs/model/decode"

// example is one documented answer. JSON is the body as the server sends it
// (error bodies carry the request's X-Request-Id, random unless the client
// sent one);
// tests/spec_e2e_test.go provokes each from the real binary (by Name) and
// compares: error bodies exactly, success bodies by shape (same keys, same
// JSON types), since timings and probabilities vary.
type example struct {
	Name, Summary, JSON string
}

// responseExamples: "operationId status" → the examples shown for it. Every
// documented status needs at least one, and every entry here a documented
// status (fixup fails otherwise), so the docs cannot drift silently.
var responseExamples = map[string][]example{
	"getHealth 200": {{"ok", "Serving", `{"status":"OK"}`},
		{"auth_disabled", "Serving with AUTH_DISABLED=true", `{"status":"OK","warnings":["authentication is DISABLED (AUTH_DISABLED=true): /upload and /predict are open to anyone"]}`}},
	"getReady 200": {{"ready", "Model loaded and warmed up", `{"status":"ready","model":` + modelInfo + `}`}},
	// Only while the server drains on shutdown, which a docs check cannot
	// provoke cheaply; the text is server.ErrDraining's.
	"getReady 503":      {{"not_ready", "Shutting down", `{"error":"not_ready","detail":"shutting down: finishing the requests in flight","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`}},
	"getModel 200":      {{"default_model", "The default model", modelInfo}},
	"classifyImage 200": {{"cat", "A cat photo", catAnswer}},
	"classifyImage 400": {
		{"file_missing", "No part named \"file\"", `{"error":"file_missing","detail":"multipart field \"file\" is required","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`},
		{"file_empty", "The file part has no bytes", `{"error":"file_empty","detail":"the \"file\" part is empty","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`},
		{"multiple_files", "Two file parts in one request", `{"error":"multiple_files","detail":"send one image per request: the body has more than one \"file\" part (POST /predict takes several)","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`},
		{"image_not_base64", "JSON body whose \"image\" is not base64", `{"error":"bad_request","detail":"\"image\" is not base64: an illegal character at offset 4","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`},
		{"bad_request", "Multipart body cut short", `{"error":"bad_request","detail":"the multipart body ends before its closing boundary (\"--<boundary>--\" from Content-Type); send the image as multipart/form-data in the field \"file\" (curl -F file=@photo.jpg)","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`},
	},
	"classifyImage 401": {
		{"no_token", "No Authorization header (WWW-Authenticate: Bearer realm=\"catsdogs\")", `{"error":"invalid_token","detail":"missing bearer token: send \"Authorization: Bearer <access token>\"","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`},
		{"malformed_token", "Not a JWT", `{"error":"invalid_token","detail":"invalid token: malformed jwt: go-jose/go-jose: invalid protected header","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`},
		{"two_authorization_headers", "More than one Authorization header", `{"error":"invalid_request","detail":"invalid request: send exactly one Authorization header","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`},
	},
	"classifyImage 403": {{"insufficient_scope", "Valid token without the scope", `{"error":"insufficient_scope","detail":"token is valid but lacks the scope \"get::prediction\"","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`}},
	"classifyImage 413": {
		{"payload_too_large", "Body over MAX_UPLOAD_BYTES (here 10 MiB)", `{"error":"payload_too_large","detail":"request body is over the 10485760-byte limit (MAX_UPLOAD_BYTES)","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`},
		{"image_too_large", "Image over MAX_IMAGE_PIXELS (read from its header)", `{"error":"image_too_large","detail":"the image has too many pixels: 10000x10000 is over the limit of 50000000","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`},
	},
	"classifyImage 415": {
		{"unsupported_media_type", "Body neither a form, an image nor JSON", `{"error":"unsupported_media_type","detail":"send multipart/form-data with the image in the field \"file\", the image itself as the body (Content-Type image/jpeg, image/png, ... or application/octet-stream), or application/json {\"image\": \"<base64>\"} (got Content-Type \"text/plain\")","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`},
		{"unsupported_image", "The file is not an image", `{"error":"unsupported_image","detail":"` + unsupported + `","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`},
	},
	"classifyImage 422": {{"corrupt_image", "A truncated JPEG", `{"error":"corrupt_image","detail":"image data is corrupt or truncated: Corrupt JPEG data: premature end of data segment","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`}},
	"classifyImage 503": {{"auth_unavailable", "Identity provider unreachable (Retry-After: 5)", `{"error":"auth_unavailable","detail":"cannot reach the identity provider to verify tokens; try again shortly","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`}},
	"classifyImages 200": {{"one_cat_one_text_file", "A cat photo and a text file: the text file's item has its own error", `{"results":[` +
		`{"index":0,"filename":"cat.jpg",` + catAnswer[1:len(catAnswer)-1] + `},` +
		`{"index":1,"filename":"notes.txt","error":"unsupported_image","detail":"` + unsupported + `","status":415}],` +
		`"count":2,"failed":1,"model":{"name":"catsdogs-mobilenet","version":"4"},"timings_ms":{"total":12.994}}`}},
	"classifyImages 400": {{"predict_file_missing", "No part named \"file\"", `{"error":"file_missing","detail":"send one or more images, each in a multipart part named \"file\"","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`}},
	"classifyImages 401": {{"predict_no_token", "No Authorization header", `{"error":"invalid_token","detail":"missing bearer token: send \"Authorization: Bearer <access token>\"","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`}},
	"classifyImages 403": {{"predict_insufficient_scope", "Valid token without the scope", `{"error":"insufficient_scope","detail":"token is valid but lacks the scope \"get::prediction\"","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`}},
	"classifyImages 413": {{"too_many_files", "More than PREDICT_MAX_FILES file parts (here 32)", `{"error":"too_many_files","detail":"send at most 32 files per request (PREDICT_MAX_FILES); split the rest into further requests","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`}},
	"classifyImages 415": {{"predict_unsupported_media_type", "Body neither a form, an image nor JSON", `{"error":"unsupported_media_type","detail":"send multipart/form-data with the image in the field \"file\", the image itself as the body (Content-Type image/jpeg, image/png, ... or application/octet-stream), or application/json {\"images\": [\"<base64>\", ...]} (got Content-Type \"text/plain\")","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`}},
	"classifyImages 503": {{"predict_auth_unavailable", "Identity provider unreachable (Retry-After: 5)", `{"error":"auth_unavailable","detail":"cannot reach the identity provider to verify tokens; try again shortly","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`}},
}

// defaultExamples go with the `default` response every operation shares.
var defaultExamples = []example{
	{"not_found", "404: no such path", `{"error":"not_found","detail":"no such route; see /docs","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`},
	{"method_not_allowed", "405: e.g. DELETE /health (Allow: GET, HEAD)", `{"error":"method_not_allowed","detail":"DELETE is not allowed here; see /docs","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`},
}

// unsupported is the service's answer detail for a file that is not an image
// (it lists decode.Formats).
var unsupported = decode.ErrUnsupportedFormat.Error()

const modelInfo = `{"name":"catsdogs-mobilenet","version":"4","file":"catsdogs-mobilenet-int8.onnx",` +
	`"sha256":"4b418e4fcff0cb5d5a1f031d3c347faa12897e0d164c11a44d64c6ff3dce4bb5","labels":["Cat","Dog","Other"],` +
	`"input":"input [-1 3 192 192] float32","preprocessing":{"name":"catsdogs-mobilenet","version":"4","labels":["Cat","Dog","Other"],` +
	`"layout":"NCHW","width":192,"height":192,"resize":"shorter_side_center_crop","resize_shorter":192,"channel_order":"RGB",` +
	`"pixel_scale":0.003921569,"mean":[0.485,0.456,0.406],"std":[0.229,0.224,0.225],"output":"logits"},` +
	`"spec_source":["metadata"],"workers":1,"intra_op_threads":2,"admitted":10,"queue_size":20,"batch_max_size":8,"batch_max_delay_ms":2,` +
	`"onnxruntime_version":"1.24.3","warmup_ms":248.22,"precision":{"setting":"auto","served":"int8",` +
	`"reason":"int8 is 0.49x fp32's time per image on this CPU (3.02 vs 6.15 ms; at most 0.85x wanted) and within the accuracy bounds",` +
	`"fp32_ms":6.15,"int8_ms":3.02,"cpu_int8_features":"avx2,avx512-vnni"}}`

// catAnswer is /upload's answer for a cat photo, and that image's item in
// /predict's.
const catAnswer = `{"prediction":"Cat","values":[0.677084,0.228651,0.09426496],"labels":["Cat","Dog","Other"],"confidence":0.677084,` +
	`"scores":[{"label":"Cat","probability":0.677084},{"label":"Dog","probability":0.228651},{"label":"Other","probability":0.09426496}],` +
	`"model":{"name":"catsdogs-mobilenet","version":"4"},"image":{"format":"jpeg","width":160,"height":169,"decoded_width":160,"decoded_height":169},` +
	`"timings_ms":{"queue":0.011,"decode":0.617,"preprocess":0.584,"inference":3.633,"total":5.437},"inference_batch":1}`
