// Command loadtest drives POST /upload with real images and reports
// throughput, latency percentiles and, given the server's PID, its memory.
//
//	go run ./tools/loadtest -token "$TOKEN" -images ../shared/datasets/pets/test/cat -c 4 -n 500
//	go run ./tools/loadtest -images 'photos/*.jpg' -c 8 -d 30s -pid $(pgrep -n catsdogs) -json
//
// Images are read and wrapped in multipart bodies once, before the clock
// starts, so the client spends its CPU on sending, not on encoding.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"catsdogs/tools/internal/loadkit"
)

type options struct {
	url       string
	token     string
	images    string
	maxImages int
	c         int
	n         int
	d         time.Duration
	warmup    int
	timeout   time.Duration
	pid       int
	json      bool
	files     int
	form      string // -body: multipart, raw or oip
}

type body struct{ data []byte }

// Report is the run's outcome; -json prints it as one object.
type Report struct {
	URL             string         `json:"url"`
	Images          int            `json:"images"`
	Concurrency     int            `json:"concurrency"`
	Requests        int            `json:"requests"`
	FilesPerRequest int            `json:"files_per_request"`
	OK              int            `json:"ok"`
	DurationS       float64        `json:"duration_s"`
	RPS             float64        `json:"rps"`
	OKRPS           float64        `json:"ok_rps"`
	ImagesPerS      float64        `json:"images_per_s"` // ok_rps × files_per_request
	LatencyMS       Latency        `json:"latency_ms"`
	Status          map[string]int `json:"status"`
	TransportErrors int            `json:"transport_errors"`
	ErrorSamples    []string       `json:"error_samples,omitempty"`
	RSSStartKB      int64          `json:"rss_start_kb,omitempty"`
	RSSKB           int64          `json:"rss_kb,omitempty"`
	RSSPeakKB       int64          `json:"rss_peak_kb,omitempty"`
	// CPUMSPerOK is the server's CPU time (all threads) over the measured
	// phase per 200 answer: what one answer costs, however many cores.
	CPUMSPerOK float64 `json:"cpu_ms_per_ok,omitempty"`
}

// Latency of 200 answers, in milliseconds.
type Latency struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

func main() {
	var o options
	flag.StringVar(&o.url, "url", "http://127.0.0.1:8080/upload", "upload endpoint")
	flag.StringVar(&o.token, "token", "", "bearer token (sent as \"Authorization: Bearer <token>\"; empty sends none)")
	flag.StringVar(&o.images, "images", "", "directory of JPEGs, or a glob (quote it)")
	flag.IntVar(&o.maxImages, "max-images", 0, "use at most this many images (0: all), taken in name order")
	flag.IntVar(&o.c, "c", 4, "concurrent connections")
	flag.IntVar(&o.n, "n", 0, "total requests (default 200 when -d is not given)")
	flag.DurationVar(&o.d, "d", 0, "run for this long instead of -n requests")
	flag.IntVar(&o.warmup, "warmup", 0, "requests sent before measuring (not counted)")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Second, "per-request timeout")
	flag.IntVar(&o.pid, "pid", 0, "server PID: report its RSS (VmRSS) and peak RSS (VmHWM) from /proc")
	flag.BoolVar(&o.json, "json", false, "print one JSON object instead of text")
	flag.IntVar(&o.files, "files", 1, "images per request, each in its own \"file\" part (for /predict)")
	flag.StringVar(&o.form, "body", "multipart", "body form: multipart (/upload, /predict), raw (the image as the body), oip (Open Inference Protocol JSON, base64 BYTES: /v2/models/NAME/infer)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.c < 1 {
		return errors.New("-c must be at least 1")
	}
	if o.n == 0 && o.d == 0 {
		o.n = 200
	}
	files, err := imageFiles(o.images, o.maxImages)
	if err != nil {
		return err
	}
	if o.files < 1 {
		return errors.New("-files must be at least 1")
	}
	bodies, ctype, err := buildBodies(files, o.files, o.form)
	if err != nil {
		return err
	}
	client := &http.Client{
		Timeout: o.timeout,
		Transport: &http.Transport{
			MaxIdleConns:        2 * o.c,
			MaxIdleConnsPerHost: 2 * o.c,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
	send := func(i int) (status int, d time.Duration, err error) {
		b := bodies[i%len(bodies)]
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, o.url, bytes.NewReader(b.data))
		if err != nil {
			return 0, 0, err
		}
		req.Header.Set("Content-Type", ctype)
		if o.token != "" {
			req.Header.Set("Authorization", "Bearer "+o.token)
		}
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, time.Since(t0), err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, time.Since(t0), err
	}

	// Warm-up: open the connections and let the server settle.
	var wg sync.WaitGroup
	var next atomic.Int64
	for w := 0; w < min(o.c, o.warmup); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < o.warmup; i = int(next.Add(1)) - 1 {
				_, _, _ = send(i)
			}
		}()
	}
	wg.Wait()

	rep := Report{URL: o.url, Images: len(files), Concurrency: o.c, FilesPerRequest: o.files, Status: map[string]int{}}
	if o.pid > 0 {
		// Reset the server's peak RSS (VmHWM) so rss_peak_kb is this run's,
		// not the process's lifetime's; without the permission, it stays so.
		_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", o.pid), []byte("5"), 0)
		if rep.RSSStartKB, _, err = procMemory(o.pid); err != nil {
			return err
		}
	}
	var cpu0 float64
	if o.pid > 0 {
		if cpu0, err = loadkit.ProcCPU(o.pid); err != nil {
			return fmt.Errorf("-pid: %w", err)
		}
	}

	type result struct {
		ok       []float64 // latencies of 200s, ms
		status   map[int]int
		errs     int
		samples  []string
		requests int
	}
	results := make([]result, o.c)
	next.Store(0)
	start := time.Now()
	var deadline time.Time
	if o.d > 0 {
		deadline = start.Add(o.d)
	}
	for w := 0; w < o.c; w++ {
		wg.Add(1)
		go func(r *result) {
			defer wg.Done()
			r.status = map[int]int{}
			for {
				i := int(next.Add(1)) - 1
				if o.d > 0 {
					if time.Now().After(deadline) {
						return
					}
				} else if i >= o.n {
					return
				}
				st, d, err := send(i)
				r.requests++
				if err != nil {
					r.errs++
					if len(r.samples) < 3 {
						r.samples = append(r.samples, err.Error())
					}
					continue
				}
				r.status[st]++
				if st == http.StatusOK {
					r.ok = append(r.ok, float64(d.Microseconds())/1000)
				}
			}
		}(&results[w])
	}
	wg.Wait()
	elapsed := time.Since(start)

	var lat []float64
	for _, r := range results {
		rep.Requests += r.requests
		rep.TransportErrors += r.errs
		lat = append(lat, r.ok...)
		for st, n := range r.status {
			rep.Status[strconv.Itoa(st)] += n
		}
		for _, s := range r.samples {
			if len(rep.ErrorSamples) < 5 && !contains(rep.ErrorSamples, s) {
				rep.ErrorSamples = append(rep.ErrorSamples, s)
			}
		}
	}
	rep.OK = len(lat)
	rep.DurationS = round(elapsed.Seconds(), 3)
	rep.RPS = round(float64(rep.Requests)/elapsed.Seconds(), 1)
	rep.OKRPS = round(float64(rep.OK)/elapsed.Seconds(), 1)
	rep.ImagesPerS = round(float64(rep.OK*o.files)/elapsed.Seconds(), 1)
	rep.LatencyMS = latency(lat)
	if o.pid > 0 {
		if rep.RSSKB, rep.RSSPeakKB, err = procMemory(o.pid); err != nil {
			return err
		}
		cpu1, err := loadkit.ProcCPU(o.pid)
		if err != nil {
			return fmt.Errorf("-pid: %w", err)
		}
		if rep.OK > 0 {
			rep.CPUMSPerOK = round((cpu1-cpu0)*1000/float64(rep.OK), 3)
		}
	}

	if o.json {
		enc := json.NewEncoder(os.Stdout)
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printText(os.Stdout, rep)
	}
	if rep.OK == 0 {
		return fmt.Errorf("no request succeeded (status %v, transport errors %d %v)", rep.Status, rep.TransportErrors, rep.ErrorSamples)
	}
	return nil
}

// imageFiles resolves -images: a directory (its *.jpg and *.jpeg) or a glob.
func imageFiles(spec string, limit int) ([]string, error) {
	if spec == "" {
		return nil, errors.New("-images is required (a directory of JPEGs or a glob)")
	}
	var files []string
	if st, err := os.Stat(spec); err == nil && st.IsDir() {
		entries, err := os.ReadDir(spec)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			ext := strings.ToLower(filepath.Ext(e.Name()))
			if !e.IsDir() && (ext == ".jpg" || ext == ".jpeg") {
				files = append(files, filepath.Join(spec, e.Name()))
			}
		}
	} else {
		m, err := filepath.Glob(spec)
		if err != nil {
			return nil, fmt.Errorf("-images %q: %w", spec, err)
		}
		files = m
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("-images %q matches no files", spec)
	}
	sort.Strings(files)
	if limit > 0 && len(files) > limit {
		files = files[:limit]
	}
	return files, nil
}

// buildBodies reads every image into a ready-to-send multipart body of
// perRequest images (the next ones, wrapping around); they share one
// boundary, so one Content-Type serves all of them.
func buildBodies(files []string, perRequest int, form string) ([]body, string, error) {
	data := make([][]byte, len(files))
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, "", err
		}
		data[i] = b
	}
	out := make([]body, 0, len(files))
	var ctype string
	for i := range files {
		var names []string
		var parts [][]byte
		for k := 0; k < perRequest; k++ {
			j := (i + k) % len(files)
			names, parts = append(names, filepath.Base(files[j])), append(parts, data[j])
		}
		var b []byte
		var ct string
		var err error
		switch form {
		case "multipart":
			b, ct, err = loadkit.FormFiles(names, parts)
		case "raw":
			b, ct = parts[0], "image/jpeg"
			if perRequest != 1 {
				err = errors.New("-body raw sends one image per request (-files 1)")
			}
		case "oip":
			b, err = loadkit.InferJSON(parts)
			ct = "application/json"
		default:
			err = fmt.Errorf("-body %q: want multipart, raw or oip", form)
		}
		if err != nil {
			return nil, "", err
		}
		out = append(out, body{data: b})
		ctype = ct
	}
	return out, ctype, nil
}

func latency(ms []float64) Latency {
	if len(ms) == 0 {
		return Latency{}
	}
	sort.Float64s(ms)
	var sum float64
	for _, v := range ms {
		sum += v
	}
	return Latency{
		Mean: round(sum/float64(len(ms)), 2),
		P50:  round(loadkit.Percentile(ms, 50), 2),
		P95:  round(loadkit.Percentile(ms, 95), 2),
		P99:  round(loadkit.Percentile(ms, 99), 2),
		Max:  round(ms[len(ms)-1], 2),
	}
}

// procMemory is the server's RSS and peak RSS in kB.
func procMemory(pid int) (rss, hwm int64, err error) {
	rss, hwm, err = loadkit.ProcMemory(pid)
	if err != nil {
		err = fmt.Errorf("-pid: %w", err)
	}
	return rss, hwm, err
}

func round(v float64, places int) float64 {
	f := math.Pow(10, float64(places))
	return math.Round(v*f) / f
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func printText(w io.Writer, r Report) {
	fmt.Fprintf(w, "url          %s\n", r.URL)
	fmt.Fprintf(w, "images       %d, concurrency %d, %d per request\n", r.Images, r.Concurrency, r.FilesPerRequest)
	fmt.Fprintf(w, "requests     %d in %.2fs = %.1f req/s (%d ok, %.1f ok/s, %.1f images/s)\n", r.Requests, r.DurationS, r.RPS, r.OK, r.OKRPS, r.ImagesPerS)
	l := r.LatencyMS
	fmt.Fprintf(w, "latency ms   mean %.2f  p50 %.2f  p95 %.2f  p99 %.2f  max %.2f  (200s only)\n", l.Mean, l.P50, l.P95, l.P99, l.Max)
	codes := make([]string, 0, len(r.Status))
	for c := range r.Status {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	var parts []string
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%s×%d", c, r.Status[c]))
	}
	fmt.Fprintf(w, "status       %s\n", strings.Join(parts, "  "))
	fmt.Fprintf(w, "errors       %d transport errors", r.TransportErrors)
	if len(r.ErrorSamples) > 0 {
		fmt.Fprintf(w, " (e.g. %s)", strings.Join(r.ErrorSamples, "; "))
	}
	fmt.Fprintln(w)
	if r.CPUMSPerOK > 0 {
		fmt.Fprintf(w, "server CPU   %.2f ms per 200\n", r.CPUMSPerOK)
	}
	if r.RSSPeakKB > 0 {
		fmt.Fprintf(w, "server RSS   start %.1f MiB, end %.1f MiB, peak %.1f MiB\n",
			float64(r.RSSStartKB)/1024, float64(r.RSSKB)/1024, float64(r.RSSPeakKB)/1024)
	}
}
