package main

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
		{"auth_disabled", "Serving with AUTH_DISABLED=true", `{"status":"OK","warnings":["authentication is DISABLED (AUTH_DISABLED=true): /upload is open to anyone"]}`}},
	"getReady 200": {{"ready", "Model loaded and warmed up", `{"status":"ready","model":` + modelInfo + `}`}},
	// Only while the server drains on shutdown, which a docs check cannot
	// provoke cheaply; the text is server.ErrDraining's.
	"getReady 503": {{"not_ready", "Shutting down", `{"error":"not_ready","detail":"shutting down: finishing the requests in flight","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`}},
	"getModel 200": {{"default_model", "The default model", modelInfo}},
	"classifyImage 200": {{"cat", "A cat photo", `{"prediction":"Cat","values":[0.750111,0.154388,0.0955],"labels":["Cat","Dog","Other"],"confidence":0.750111,` +
		`"scores":[{"label":"Cat","probability":0.750111},{"label":"Dog","probability":0.154388},{"label":"Other","probability":0.0955}],` +
		`"model":{"name":"catsdogs-resnet","version":"1"},"image":{"format":"jpeg","width":160,"height":169},` +
		`"timings_ms":{"queue":0.001,"decode":1.569,"preprocess":0.384,"inference":4.634,"total":7.089}}`}},
	"classifyImage 400": {
		{"file_missing", "No part named \"file\"", `{"error":"file_missing","detail":"multipart field \"file\" is required","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`},
		{"file_empty", "The file part has no bytes", `{"error":"file_empty","detail":"the \"file\" part is empty","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`},
		{"multiple_files", "Two file parts in one request", `{"error":"multiple_files","detail":"send one image per request: the body has more than one \"file\" part","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`},
		{"bad_request", "Multipart body cut short", `{"error":"bad_request","detail":"the multipart body ends before its closing boundary (\"--<boundary>--\" from Content-Type); send the image as multipart/form-data in the field \"file\" (curl -F file=@photo.jpg)","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`},
	},
	"classifyImage 401": {
		{"no_token", "No Authorization header (WWW-Authenticate: Bearer realm=\"catsdogs\")", `{"error":"invalid_token","detail":"missing bearer token: send \"Authorization: Bearer <access token>\"","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`},
		{"malformed_token", "Not a JWT", `{"error":"invalid_token","detail":"invalid token: malformed jwt: go-jose/go-jose: invalid protected header","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`},
		{"two_authorization_headers", "More than one Authorization header", `{"error":"invalid_request","detail":"invalid request: send exactly one Authorization header","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`},
	},
	"classifyImage 403": {{"insufficient_scope", "Valid token without the scope", `{"error":"insufficient_scope","detail":"token is valid but lacks the scope \"get::prediction\"","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`}},
	"classifyImage 413": {
		{"payload_too_large", "Body over MAX_UPLOAD_BYTES (default 10 MiB)", `{"error":"payload_too_large","detail":"request body is over the 10485760-byte limit (MAX_UPLOAD_BYTES)","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`},
		{"image_too_large", "Image over MAX_IMAGE_PIXELS (read from its header)", `{"error":"image_too_large","detail":"image has too many pixels: 10000x10000 is over the limit of 50000000 pixels","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`},
	},
	"classifyImage 415": {
		{"unsupported_media_type", "Body not multipart/form-data", `{"error":"unsupported_media_type","detail":"send multipart/form-data with the image in the field \"file\" (got Content-Type \"application/json\")","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`},
		{"unsupported_image", "The file is not an image", `{"error":"unsupported_image","detail":"not an image in a supported format (JPEG, PNG, GIF, WebP, BMP, TIFF)","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`},
	},
	"classifyImage 422": {{"corrupt_image", "A truncated JPEG", `{"error":"corrupt_image","detail":"image data is corrupt or truncated: Corrupt JPEG data: premature end of data segment","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`}},
	"classifyImage 503": {{"auth_unavailable", "Identity provider unreachable (Retry-After: 5)", `{"error":"auth_unavailable","detail":"cannot reach the identity provider to verify tokens; try again shortly","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`}},
}

// defaultExamples go with the `default` response every operation shares.
var defaultExamples = []example{
	{"not_found", "404: no such path", `{"error":"not_found","detail":"no such route; see /docs","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`},
	{"method_not_allowed", "405: e.g. DELETE /health (Allow: GET, HEAD)", `{"error":"method_not_allowed","detail":"DELETE is not allowed here; see /docs","request_id":"4f9c1a2be07d4e55a1c3d2e8b6f70a91"}`},
}

const modelInfo = `{"name":"catsdogs-resnet","version":"1","file":"catsdogs-resnet.onnx","labels":["Cat","Dog","Other"],` +
	`"input":"input [-1 3 128 128] float32","preprocessing":{"name":"catsdogs-resnet","version":"1","labels":["Cat","Dog","Other"],` +
	`"layout":"NCHW","width":128,"height":128,"resize":"shorter_side_center_crop","resize_shorter":128,"channel_order":"RGB",` +
	`"pixel_scale":0.003921569,"mean":[0.485,0.456,0.406],"std":[0.229,0.224,0.225],"output":"logits"},` +
	`"spec_source":["metadata"],"workers":2,"intra_op_threads":1,"queue_size":8,"onnxruntime_version":"1.24.3","warmup_ms":16.58}`
