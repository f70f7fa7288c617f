package main

import (
	"bytes"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"catsdogs/admission"
	"catsdogs/api"
	"catsdogs/model/decode"
	"catsdogs/model/spec"
)

// Every MODEL_* setting reaches the model as a preprocessing override under
// its spec key; blank ones and other MODEL_ names are ignored.
func TestModelOverridesFromEnv(t *testing.T) {
	env := map[string]string{
		"AUTH_DISABLED": "true",
		"MODEL_LABELS":  "cat, dog, other", "MODEL_LAYOUT": "NHWC", "MODEL_INPUT_SIZE": " 224 ",
		"MODEL_RESIZE": "stretch", "MODEL_RESIZE_SHORTER": "256", "MODEL_CHANNEL_ORDER": "BGR",
		"MODEL_PIXEL_SCALE": "1", "MODEL_MEAN": "103.939,116.779,123.68", "MODEL_STD": "1,1,1",
		"MODEL_OUTPUT": "probabilities", "MODEL_NAME": "keras", "MODEL_VERSION": "2",
		"MODEL_EMPTY": "", "MODEL_STD_EXTRA": "ignored", "MODEL_INPUT": "ignored",
	}
	c, err := loadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := spec.Overrides{
		"labels": "cat, dog, other", "layout": "NHWC", "input_size": "224", "resize": "stretch",
		"resize_shorter": "256", "channel_order": "BGR", "pixel_scale": "1", "mean": "103.939,116.779,123.68",
		"std": "1,1,1", "output": "probabilities", "name": "keras", "version": "2",
	}
	if !reflect.DeepEqual(c.ModelOverrides, want) {
		t.Errorf("got  %v\nwant %v", c.ModelOverrides, want)
	}
	c, _ = loadConfig(func(k string) string {
		if k == "AUTH_DISABLED" {
			return "true"
		}
		return "  "
	})
	if len(c.ModelOverrides) != 0 {
		t.Errorf("blank values should be ignored: %v", c.ModelOverrides)
	}
}

// Each bad setting is refused with its variable's name and the form it
// wants, and all of them at once.
func TestBadSettingsMessages(t *testing.T) {
	cpus := runtime.GOMAXPROCS(0)
	maxThreads := threadsPerCPU * cpus
	cases := []struct{ name, value, want string }{
		{"PORT", "abc", `PORT: "abc" is not a port (want a number from 0 to 65535)`},
		{"PORT", "70000", `PORT: "70000" is not a port`},
		{"LISTEN_ADDR", "127.0.0.1:80", `LISTEN_ADDR: "127.0.0.1:80" has a port`},
		{"METRICS_ADDR", "9090", `METRICS_ADDR: "9090" is not host:port (want e.g. :9090`},
		{"GRPC_ADDR", "8081", `GRPC_ADDR: "8081" is not host:port (want e.g. 127.0.0.1:8081`},
		{"GRPC_ADDR", ":99999", `GRPC_ADDR: ":99999" has no valid port`},
		{"GRPC_TLS_KEY", "/no/such/key.pem", `GRPC_TLS_CERT: needs GRPC_TLS_KEY`},
		{"AUTH_DISABLED", "yes", `AUTH_DISABLED: "yes" is not a boolean (want true, false, 1 or 0)`},
		{"OAUTH2_ALLOW_HTTP", "on", `OAUTH2_ALLOW_HTTP: "on" is not a boolean`},
		{"DOCS_PERSIST_AUTHORIZATION", "ture", `DOCS_PERSIST_AUTHORIZATION: "ture" is not a boolean`},
		{"OAUTH2_LEEWAY", "5", `OAUTH2_LEEWAY: "5" is not a duration (want e.g. 500ms, 30s, 2m)`},
		{"OAUTH2_JWKS_MIN_REFRESH", "-1s", `OAUTH2_JWKS_MIN_REFRESH: "-1s" is not a duration`},
		{"DECODE_TIMEOUT", "soon", `DECODE_TIMEOUT: "soon" is not a duration`},
		{"SHUTDOWN_DRAIN_DELAY", "5 s", `SHUTDOWN_DRAIN_DELAY: "5 s" is not a duration`},
		{"MAX_UPLOAD_BYTES", "10MB", `MAX_UPLOAD_BYTES: "10MB" is not a size (want bytes, e.g. 10485760, or with KiB, MiB, GiB: 10MiB)`},
		{"MEMORY_BUDGET", "-1", `MEMORY_BUDGET: "-1" is not a size`},
		{"MAX_IMAGE_PIXELS", "1e6", `MAX_IMAGE_PIXELS: "1e6" is not a whole number >= 0`},
		{"MAX_IMAGE_SIDE", "x", `MAX_IMAGE_SIDE: "x" is not a whole number`},
		{"MAX_IMAGE_ASPECT", "x", `MAX_IMAGE_ASPECT: "x" is not a whole number`},
		{"MAX_CONNECTIONS", "-5", `MAX_CONNECTIONS: "-5" is not a whole number >= 0`},
		{"INFERENCE_WORKERS", "two", `INFERENCE_WORKERS: "two" is not a whole number`},
		{"ORT_INTRA_OP_THREADS", "x", `ORT_INTRA_OP_THREADS: "x" is not a whole number`},
		{"INFERENCE_QUEUE", "x", `INFERENCE_QUEUE: "x" is not a whole number`},
		{"LOG_FORMAT", "yaml", `LOG_FORMAT: "yaml" is not a log format (want text or json)`},
		{"CORS_ALLOWED_ORIGINS", "app.example", `CORS_ALLOWED_ORIGINS: "app.example" is not an origin`},
		{"CORS_ALLOWED_ORIGINS", "https://app.example/", `CORS_ALLOWED_ORIGINS: "https://app.example/" has more than scheme://host[:port]`},
		{"CORS_ALLOWED_ORIGINS", "ftp://app.example", `CORS_ALLOWED_ORIGINS: "ftp://app.example" has no http or https scheme`},
		{"CORS_ALLOWED_ORIGINS", "https://*.example", `CORS_ALLOWED_ORIGINS: "https://*.example" has a wildcard (not supported: list each origin)`},
		{"CORS_ALLOWED_ORIGINS", "https://bücher.example", `CORS_ALLOWED_ORIGINS: "https://bücher.example" has a non-ASCII host (want its punycode form`},
		{"CORS_ALLOWED_ORIGINS", "https://app.example:", `CORS_ALLOWED_ORIGINS: "https://app.example:" has an empty port`},
		{"CORS_ALLOWED_ORIGINS", "https://app.example:70000", `CORS_ALLOWED_ORIGINS: "https://app.example:70000" has no valid port`},
		{"TRUSTED_PROXIES", "10.0.0.0/8, proxy.lan", `TRUSTED_PROXIES: "proxy.lan" is not an IP or CIDR (want e.g. 10.0.0.1 or 10.0.0.0/8, comma-separated)`},
		{"TRUSTED_PROXIES", "10.0.0.0/33", `TRUSTED_PROXIES: "10.0.0.0/33" is not an IP or CIDR`},
		// 0 would read as "no limit" but silently meant the default: refused.
		{"MAX_IMAGE_SIDE", "0", `MAX_IMAGE_SIDE: "0" is not allowed (want more than 0; leave it unset for the default, 16384)`},
		{"MAX_IMAGE_ASPECT", "0", `MAX_IMAGE_ASPECT: "0" is not allowed`},
		{"MAX_IMAGE_PIXELS", "0", `MAX_IMAGE_PIXELS: "0" is not allowed`},
		{"DECODE_TIMEOUT", "0s", `DECODE_TIMEOUT: "0s" is not allowed (want more than 0; leave it unset for the default, 10s)`},
		{"INFERENCE_QUEUE", "0", `INFERENCE_QUEUE: "0" is not allowed (want more than 0; leave it unset for the default, 2 x admitted)`},
		{"OAUTH2_JWKS_MIN_REFRESH", "0", `OAUTH2_JWKS_MIN_REFRESH: "0" is not allowed`},
		{"MAX_UPLOAD_BYTES", "0", `MAX_UPLOAD_BYTES: "0" is not allowed`},
		{"MEMORY_BUDGET", "0MiB", `MEMORY_BUDGET: "0MiB" is not allowed`},
		{"MODEL_PATH", "/nonexistent/m.onnx", `MODEL_PATH: /nonexistent/m.onnx: no such file (want the path of an .onnx model)`},
		{"ONNXRUNTIME_LIB", "/nonexistent/lib.so", `ONNXRUNTIME_LIB: /nonexistent/lib.so: no such file`},
		{"MODEL_SPEC", "/nonexistent/m.json", `MODEL_SPEC: /nonexistent/m.json: no such file`},
		{"OAUTH2_ISSUER", "not a url", `OAUTH2_ISSUER: "not a url" is not an absolute URL (want e.g. https://TENANT.auth0.com/)`},
		{"OAUTH2_ISSUER", "127.0.0.1:9300", `OAUTH2_ISSUER: "127.0.0.1:9300" is not an absolute URL`},
		{"OAUTH2_ISSUER", "http://idp.example/", `OAUTH2_ISSUER: "http://idp.example/" uses http on a non-loopback host (want https; OAUTH2_ALLOW_HTTP=true allows it for development)`},
		{"OAUTH2_ISSUER", "ftp://idp.example/", `OAUTH2_ISSUER: "ftp://idp.example/" has scheme "ftp" (want https)`},
		{"OAUTH2_JWKS_URI", "http://10.0.0.1/jwks", `OAUTH2_JWKS_URI: "http://10.0.0.1/jwks" uses http on a non-loopback host`},
		{"OAUTH2_AUDIENCE", " , ", `OAUTH2_AUDIENCE: not set (want the API identifier`},
		{"OAUTH2_SCOPE", "a b", `OAUTH2_SCOPE: "a b" is not one scope`},
		// Issue 22: in range, named before anything binds.
		{"ORT_INTRA_OP_THREADS", "5000", "ORT_INTRA_OP_THREADS: 5000 is too many for " + strconv.Itoa(cpus) + " CPUs (want at most " + strconv.Itoa(maxThreads)},
		{"INFERENCE_WORKERS", strconv.Itoa(maxThreads + 1), "INFERENCE_WORKERS: " + strconv.Itoa(maxThreads+1) + " is too many for"},
		{"ORT_INTRA_OP_THREADS", strconv.Itoa(threadsPerCPU + 1), "ORT_INTRA_OP_THREADS: " + strconv.Itoa(threadsPerCPU+1) + " per run times " + strconv.Itoa(cpus) + " runners"},
		{"OAUTH2_JWKS_MIN_REFRESH", "1ns", `OAUTH2_JWKS_MIN_REFRESH: 1ns is out of range (want 1s to 1h0m0s)`},
		{"OAUTH2_JWKS_MIN_REFRESH", "2h", `OAUTH2_JWKS_MIN_REFRESH: 2h0m0s is out of range`},
		{"OAUTH2_LEEWAY", "24h", `OAUTH2_LEEWAY: 24h0m0s is out of range (want 0s to 10m0s)`},
		{"DECODE_TIMEOUT", "1us", `DECODE_TIMEOUT: 1µs is out of range`},
		{"SHUTDOWN_DRAIN_DELAY", "1h", `SHUTDOWN_DRAIN_DELAY: 1h0m0s is out of range`},
		{"MAX_CONNECTIONS", "2000000", `MAX_CONNECTIONS: 2000000 is too large (want at most 1048576)`},
		{"INFERENCE_QUEUE", "100000", `INFERENCE_QUEUE: 100000 is too large`},
		{"PREDICT_MAX_FILES", "5000", `PREDICT_MAX_FILES: 5000 is too large`},
	}
	good := map[string]string{"OAUTH2_ISSUER": "https://idp.example/", "OAUTH2_AUDIENCE": "api"}
	all := map[string]string{}
	for _, c := range cases {
		env := maps.Clone(good)
		env[c.name] = c.value
		_, err := loadConfig(func(k string) string { return env[k] })
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s=%q: got %v\nwant %s", c.name, c.value, err, c.want)
		}
		if c.name != "OAUTH2_ISSUER" || all[c.name] == "" {
			all[c.name] = c.value
		}
	}
	// All at once: one message per bad variable.
	_, err := loadConfig(func(k string) string { return all[k] })
	for name := range all {
		if !strings.Contains(err.Error(), name+": ") {
			t.Errorf("all at once: %s missing from\n%v", name, err)
		}
	}

	for _, ok := range []map[string]string{
		{"OAUTH2_ISSUER": "http://127.0.0.1:9300/", "OAUTH2_AUDIENCE": "api"}, // loopback IdP
		{"OAUTH2_ISSUER": "http://localhost/", "OAUTH2_AUDIENCE": "api"},
		{"OAUTH2_ISSUER": "http://[::1]:8000", "OAUTH2_AUDIENCE": "api"},
		{"OAUTH2_ISSUER": "http://idp.lan/", "OAUTH2_AUDIENCE": "api", "OAUTH2_ALLOW_HTTP": "true"},
		{"AUTH_DISABLED": "1", "MAX_UPLOAD_BYTES": "2MiB", "MEMORY_BUDGET": "1GiB", "LOG_FORMAT": "json",
			"CORS_ALLOWED_ORIGINS": "https://a.example, http://localhost:3000", "METRICS_ADDR": ":9090", "SHUTDOWN_DRAIN_DELAY": "0s"},
		{"AUTH_DISABLED": "TRUE", "CORS_ALLOWED_ORIGINS": "*", "TRUSTED_PROXIES": "10.0.0.1, 10.0.0.0/8,fd00::/8, ::1"},
		// 0 where it has a meaning of its own: no cap, the CPU quota, no leeway, no drain.
		{"AUTH_DISABLED": "true", "MAX_CONNECTIONS": "0", "INFERENCE_WORKERS": "0", "ORT_INTRA_OP_THREADS": "0",
			"OAUTH2_LEEWAY": "0s", "SHUTDOWN_DRAIN_DELAY": "0"},
		// The edges of the ranges.
		{"AUTH_DISABLED": "true", "INFERENCE_WORKERS": "1", "ORT_INTRA_OP_THREADS": strconv.Itoa(maxThreads),
			"OAUTH2_JWKS_MIN_REFRESH": "1s", "OAUTH2_LEEWAY": "10m", "DECODE_TIMEOUT": "1m", "PREDICT_MAX_FILES": "1024"},
	} {
		c, err := loadConfig(func(k string) string { return ok[k] })
		if err != nil {
			t.Errorf("%v refused: %v", ok, err)
		}
		if ok["MAX_UPLOAD_BYTES"] == "2MiB" && (c.MaxUploadBytes != 2<<20 || c.MemoryBudget != 1<<30) {
			t.Errorf("sizes: %d %d", c.MaxUploadBytes, c.MemoryBudget)
		}
	}
}

// Every variable loadConfig reads is in settings (so --help shows it) and
// in docs/CONFIGURATION.md's table with the same default; --help prints each
// with its default, and the README's summary agrees with both.
func TestSettingsListed(t *testing.T) {
	read := map[string]bool{}
	_, _ = loadConfig(func(k string) string { read[k] = true; return "" })
	names := settingNames()
	for k := range read {
		if !slices.Contains(names, k) {
			t.Errorf("%s is read but not in settings (--help)", k)
		}
	}
	var help bytes.Buffer
	printHelp(&help)
	for _, s := range settings {
		if !strings.Contains(help.String(), s.name) || !strings.Contains(help.String(), s.defaultText()) {
			t.Errorf("--help lacks %s or its default %q", s.name, s.defaultText())
		}
	}
	config := docDefaults(t, "docs/CONFIGURATION.md")
	for _, n := range names {
		if _, ok := config[n]; !ok {
			t.Errorf("docs/CONFIGURATION.md does not document %s", n)
		}
		if !read[n] {
			t.Errorf("%s is in settings but never read", n)
		}
	}
	readme := docDefaults(t, "README.md")
	if len(readme) < 5 {
		t.Fatalf("README's configuration table: %d variables found", len(readme))
	}
	for name := range readme {
		if !slices.Contains(names, name) {
			t.Errorf("README names %s, which is not a setting", name)
		}
	}
	// A default that is a value must be written as one, in code style: the
	// one a user could set.
	for _, s := range settings {
		if s.def == "" {
			continue
		}
		for doc, cells := range map[string]map[string]string{"docs/CONFIGURATION.md": config, "README.md": readme} {
			if cell, ok := cells[s.name]; ok && !strings.Contains(cell, "`"+s.def+"`") {
				t.Errorf("%s: %s's default is %q, not `%s` as in settings", doc, s.name, cell, s.def)
			}
		}
	}
}

// The README's route table names the image formats as decode.Formats has
// them: the one list, which the OpenAPI text and the refusal come from too.
func TestREADMEListsTheFormats(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), decode.FormatList()) {
		t.Errorf("README.md does not list the formats as %q", decode.FormatList())
	}
}

var envName = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

// docDefaults reads the markdown tables of file whose first column names
// variables in code style: each variable's default column.
func docDefaults(t *testing.T, file string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.HasPrefix(line, "| `") {
			continue
		}
		for _, name := range strings.Split(cells[1], ",") {
			if name = strings.Trim(strings.TrimSpace(name), "`"); envName.MatchString(name) {
				out[name] = strings.TrimSpace(cells[2])
			}
		}
	}
	return out
}

// Each setting reads its own default as a user's value, to the same config
// as leaving it unset, and accepts the values at its bounds.
func TestSettingsParse(t *testing.T) {
	base := map[string]string{"OAUTH2_ISSUER": "https://idp.example/", "OAUTH2_AUDIENCE": "api"}
	defaults, err := loadConfig(func(k string) string { return base[k] })
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, s := range settings {
		if s.field == nil {
			continue
		}
		if s.def != "" {
			env := maps.Clone(base)
			env[s.name] = s.def
			c, err := loadConfig(func(k string) string { return env[k] })
			if err != nil || !reflect.DeepEqual(c, defaults) {
				t.Errorf("%s=%s (its default): %v, or another config than leaving it unset", s.name, s.def, err)
			}
		}
		for _, v := range []string{s.min, s.max} {
			var complaints []string
			if v != "" && !s.read(&Config{}, v, func(f string, a ...any) { complaints = append(complaints, fmt.Sprintf(f, a...)) }) {
				t.Errorf("%s=%s, at its bound, refused: %v", s.name, v, complaints)
			}
		}
	}
}

// Each bound in the table refuses the value just past it, with a message
// that names the setting.
func TestSettingsRefuseOutOfRange(t *testing.T) {
	checked := 0
	for _, s := range settings {
		if s.field == nil || (s.min == "" && s.max == "") {
			continue
		}
		var past []string // values just past the bounds, as a user writes them
		switch s.field(&Config{}).(type) {
		case *int, *int64:
			if s.min != "" {
				lo, _ := strconv.ParseInt(s.min, 10, 64)
				past = append(past, strconv.FormatInt(lo-1, 10))
			}
			if s.max != "" {
				hi, _ := strconv.ParseInt(s.max, 10, 64)
				past = append(past, strconv.FormatInt(hi+1, 10))
			}
		case *time.Duration:
			if lo, _ := time.ParseDuration(s.min); lo > 0 {
				past = append(past, (lo - time.Nanosecond).String(), "0s")
			}
			if s.max != "" {
				hi, _ := time.ParseDuration(s.max)
				past = append(past, (hi + time.Nanosecond).String())
			}
		default:
			t.Fatalf("%s has bounds but is no number", s.name)
		}
		for _, v := range past {
			env := map[string]string{"AUTH_DISABLED": "true", s.name: v}
			_, err := loadConfig(func(k string) string { return env[k] })
			if err == nil || !strings.Contains(err.Error(), s.name+": ") {
				t.Errorf("%s=%s: %v, want a refusal naming %s", s.name, v, err, s.name)
			}
			checked++
		}
	}
	if checked < 15 {
		t.Errorf("only %d out-of-range values tried", checked)
	}
}

// PREDICT_MAX_BYTES follows a smaller MEMORY_BUDGET when unset (so lowering
// the budget alone still starts), and is refused above it when set.
func TestPredictMaxBytesFitsTheBudget(t *testing.T) {
	load := func(env map[string]string) (Config, error) {
		env["AUTH_DISABLED"] = "true"
		return loadConfig(func(k string) string { return env[k] })
	}
	c, err := load(map[string]string{})
	if err != nil || c.PredictMaxBytes != 32<<20 || c.PredictMaxFiles != 32 || c.BatchMaxSize != 8 {
		t.Fatalf("defaults: %v, predict %d bytes %d files, batch %d", err, c.PredictMaxBytes, c.PredictMaxFiles, c.BatchMaxSize)
	}
	c, err = load(map[string]string{"MEMORY_BUDGET": "4MiB", "MAX_UPLOAD_BYTES": "2MiB"})
	if err != nil || c.PredictMaxBytes != 4<<20 {
		t.Fatalf("MEMORY_BUDGET=4MiB: %v, PREDICT_MAX_BYTES %d, want 4 MiB", err, c.PredictMaxBytes)
	}
	_, err = load(map[string]string{"MEMORY_BUDGET": "16MiB", "PREDICT_MAX_BYTES": "20MiB"})
	if err == nil || !strings.Contains(err.Error(), "PREDICT_MAX_BYTES") {
		t.Fatalf("PREDICT_MAX_BYTES over MEMORY_BUDGET: %v, want an error naming it", err)
	}
}

// Issue 22: CORS origins are kept as browsers send them, which is how the
// middleware compares them: an upper-case scheme used to pass the check and
// then panic in gin-contrib/cors, a default port to match nothing.
func TestCORSOriginsNormalised(t *testing.T) {
	env := map[string]string{"AUTH_DISABLED": "true",
		"CORS_ALLOWED_ORIGINS": "HTTPS://APP.EXAMPLE, https://b.example:443, http://C.example:80, http://localhost:3000, http://[::1]:8080"}
	c, err := loadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"https://app.example", "https://b.example", "http://c.example", "http://localhost:3000", "http://[::1]:8080"}
	if !slices.Equal(c.CORSOrigins, want) {
		t.Fatalf("CORS origins %q, want %q", c.CORSOrigins, want)
	}
	r := api.NewRouter(api.Deps{AuthDisabled: true, CORSOrigins: c.CORSOrigins, // panicked on HTTPS://
		Admission: admission.New(admission.Config{MemoryBudget: c.MemoryBudget}), MaxUploadBytes: c.MaxUploadBytes,
		PredictMaxFiles: c.PredictMaxFiles, PredictMaxBytes: c.PredictMaxBytes})
	for _, o := range want {
		req := httptest.NewRequest(http.MethodGet, "/health", nil)
		req.Header.Set("Origin", o)
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if got := w.Header().Get("Access-Control-Allow-Origin"); w.Code != 200 || got != o {
			t.Errorf("Origin %s: %d, Access-Control-Allow-Origin %q", o, w.Code, got)
		}
	}
}
