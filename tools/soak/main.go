// Command soak runs the real binary with auth on against the test issuer and
// sends it mixed, partly hostile traffic for a bounded time (issue 7):
// valid photos, garbage bodies, image bombs, slow clients, bad tokens and
// duplicate Authorization headers, all at once; and the attacks of hardening
// II: random HTTP methods (every 8th 40 KB), keep-alive connections left
// idle, /predict bodies that announce 32 MiB and stall, a heavy client
// sending 32-image /predict requests, and tokens with random unknown kids. Every -every it prints status
// counts and p50/p99 latency per kind and the server's RSS; results go to
// -out (report.txt, results.json, server.log).
//
//	go run ./tools/soak -d 60s        (make soak SOAK_DURATION=60s)
//
// It fails (exit 1) when
//   - any answer is 5xx other than the deliberate 503s "busy" and
//     "auth_unavailable", or an HTTP request fails without an answer;
//   - a slow client is not cut off by the server's timeouts;
//   - the process dies;
//   - RSS at the end exceeds RSS after warm-up by more than -max-rss-growth
//     (both the median of the samples in the last 10 s of their phase, under
//     the same traffic, so a request in flight does not decide it);
//   - no valid upload succeeded;
//   - peak RSS exceeds -max-rss-mib (512: the container the defaults suit).
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"catsdogs/tests/bombs"
	"catsdogs/tests/issuer"
	"catsdogs/tools/internal/loadkit"

	"github.com/go-jose/go-jose/v4"
)

var (
	flagBin      = flag.String("bin", "bin/catsdogs", "service binary")
	flagImages   = flag.String("images", "tests/testdata/images", "folder of real photos (searched recursively for .jpg)")
	flagOut      = flag.String("out", "build/soak", "where report.txt, results.json and server.log go")
	flagDuration = flag.Duration("d", 10*time.Minute, "how long to send traffic")
	flagWarmup   = flag.Duration("warmup", 0, "warm-up before the RSS baseline (default: a fifth of -d, at most 1m)")
	flagEvery    = flag.Duration("every", 30*time.Second, "print the tables this often")
	flagMix      = flag.String("mix", "valid=3,trickle=1,garbage=1,bomb=1,slow-headers=2,slow-body=2,token=1,dup-auth=1,"+
		"method=1,idle=64,stalled-predict=8,heavy=2,forged-kid=1", "workers per traffic kind")
	flagPause     = flag.Duration("pause", 20*time.Millisecond, "pause between one worker's requests")
	flagRSSGrowth = flag.Float64("max-rss-growth", 0.20, "allowed growth of RSS from the end of warm-up to the end")
	flagMaxRSS    = flag.Int64("max-rss-mib", 512, "peak RSS allowed: the container size the defaults are sized for (0: no limit)")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

// outcome is one request's result.
type outcome struct {
	label string // "200", "413 image_too_large", "closed", "transport error"
	d     time.Duration
	bad   string // why this breaks the pass rule, if it does
}

// kind is a traffic kind: send makes one request and reports its outcome.
type kind struct {
	name string
	send func(ctx context.Context, rng *mrand.Rand) outcome
}

type tally struct {
	counts map[string]int
	ms     []float64
	bad    []string
}

type stats struct {
	mu    sync.Mutex
	kinds map[string]*tally
	bad   int
}

func (s *stats) add(k string, o outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.kinds[k]
	t.counts[o.label]++
	t.ms = append(t.ms, float64(o.d.Microseconds())/1000)
	if o.bad != "" {
		s.bad++
		if len(t.bad) < 5 {
			t.bad = append(t.bad, o.bad)
		}
	}
}

type rssSample struct {
	T     float64 `json:"t_s"`
	RSSKB int64   `json:"rss_kb"`
}

// KindResult is one kind's line of results.json.
type KindResult struct {
	Requests int            `json:"requests"`
	Status   map[string]int `json:"status"`
	P50MS    float64        `json:"p50_ms"`
	P99MS    float64        `json:"p99_ms"`
	Failures []string       `json:"failures,omitempty"`
}

func run() error {
	if err := os.MkdirAll(*flagOut, 0o755); err != nil {
		return err
	}
	warmup := *flagWarmup
	if warmup == 0 {
		warmup = min(*flagDuration/5, time.Minute)
	}
	mix, err := parseMix(*flagMix)
	if err != nil {
		return err
	}

	iss, err := issuer.Start()
	if err != nil {
		return err
	}
	defer iss.Close()
	srv, err := loadkit.Start(*flagBin, []string{"OAUTH2_ISSUER=" + iss.URL, "OAUTH2_AUDIENCE=" + issuer.DefaultAudience,
		"AUTH_DISABLED=false", "LOG_FORMAT=json", "LISTEN_ADDR=127.0.0.1"}, filepath.Join(*flagOut, "server.log"), time.Minute)
	if err != nil {
		return err
	}
	defer srv.Stop()
	pid := srv.Cmd.Process.Pid

	kinds, err := buildKinds(srv, iss)
	if err != nil {
		return err
	}
	st := &stats{kinds: map[string]*tally{}}
	var active []kind
	for _, k := range kinds {
		if mix[k.name] > 0 {
			active = append(active, k)
			st.kinds[k.name] = &tally{counts: map[string]int{}}
		}
	}
	for name := range mix {
		if !slices.ContainsFunc(kinds, func(k kind) bool { return k.name == name }) {
			return fmt.Errorf("-mix: unknown kind %q", name)
		}
	}

	var report strings.Builder
	out := io.MultiWriter(os.Stdout, &report)
	fmt.Fprintf(out, "soak: %s of mixed traffic against %s (pid %d, auth on), warm-up %s, workers %s\n",
		*flagDuration, *flagBin, pid, warmup, *flagMix)

	ctx, cancel := context.WithTimeout(context.Background(), *flagDuration)
	defer cancel()
	var wg sync.WaitGroup
	for i, k := range active {
		for w := 0; w < mix[k.name]; w++ {
			wg.Add(1)
			go func(seed uint64) {
				defer wg.Done()
				rng := mrand.New(mrand.NewPCG(seed, 7))
				for ctx.Err() == nil {
					o := k.send(ctx, rng)
					if ctx.Err() != nil {
						return // cut by the end of the run: not the server's doing
					}
					st.add(k.name, o)
					sleep(ctx, *flagPause)
				}
			}(uint64(i*100 + w))
		}
	}

	start := time.Now()
	var rss []rssSample
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	nextPrint := start.Add(*flagEvery)
	died := false
loop:
	for {
		select {
		case <-srv.Done:
			died = true
			cancel()
			break loop
		case <-ctx.Done():
			break loop
		case now := <-tick.C:
			if kb, _, err := loadkit.ProcMemory(pid); err == nil {
				rss = append(rss, rssSample{round1(now.Sub(start).Seconds()), kb})
			}
			if now.After(nextPrint) {
				nextPrint = nextPrint.Add(*flagEvery)
				printTables(out, st, rss, now.Sub(start))
			}
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	_, hwm, _ := loadkit.ProcMemory(pid)

	fmt.Fprintln(out, "\nfinal:")
	results := printTables(out, st, rss, elapsed)
	base := medianRSS(rss, warmup.Seconds()-10, warmup.Seconds())
	end := medianRSS(rss, elapsed.Seconds()-10, elapsed.Seconds())
	var failures []string
	if died {
		failures = append(failures, fmt.Sprintf("the service exited during the run: %v", srv.Err))
	}
	if st.bad > 0 {
		failures = append(failures, fmt.Sprintf("%d requests broke the rules (see the failures per kind)", st.bad))
	}
	if results["valid"].Status["200"] == 0 {
		failures = append(failures, "no valid upload got 200")
	}
	growth := 0.0
	if base > 0 {
		growth = float64(end-base) / float64(base)
	}
	fmt.Fprintf(out, "RSS: after warm-up (%s) %.0f MiB, end %.0f MiB (%+.1f %%, limit %+.0f %%), peak %.0f MiB\n",
		warmup, mib(base), mib(end), 100*growth, 100**flagRSSGrowth, mib(hwm))
	if *flagMaxRSS > 0 && hwm > *flagMaxRSS<<10 {
		failures = append(failures, fmt.Sprintf("peak RSS %.0f MiB, over %d MiB", mib(hwm), *flagMaxRSS))
	}
	if base == 0 || end == 0 {
		failures = append(failures, "RSS was not sampled over warm-up and end (run longer than the warm-up + 10 s)")
	} else if growth > *flagRSSGrowth {
		failures = append(failures, fmt.Sprintf("RSS grew %.1f %% after warm-up (limit %.0f %%)", 100*growth, 100**flagRSSGrowth))
	}
	for name, r := range results {
		for _, f := range r.Failures {
			fmt.Fprintf(out, "  %s: %s\n", name, f)
		}
	}
	if len(failures) == 0 {
		fmt.Fprintln(out, "PASS: no 5xx but deliberate 503s, slow clients cut off, the process lived, RSS flat")
	} else {
		fmt.Fprintln(out, "FAIL: "+strings.Join(failures, "; "))
	}

	b, _ := json.MarshalIndent(map[string]any{
		"duration_s": round1(elapsed.Seconds()), "warmup_s": warmup.Seconds(), "workers": *flagMix,
		"kinds": results, "rss_series": rss, "rss_after_warmup_kb": base, "rss_end_kb": end, "rss_peak_kb": hwm,
		"rss_growth": growth, "failures": failures,
	}, "", " ")
	if err := os.WriteFile(filepath.Join(*flagOut, "results.json"), b, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*flagOut, "report.txt"), []byte(report.String()), 0o644); err != nil {
		return err
	}
	if len(failures) > 0 {
		return errors.New(strings.Join(failures, "; "))
	}
	return nil
}

func parseMix(s string) (map[string]int, error) {
	m := map[string]int{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n < 0 {
			return nil, fmt.Errorf("-mix: want kind=workers, got %q", kv)
		}
		m[k] = n
	}
	return m, nil
}

// printTables prints one line per kind (cumulative) and the RSS so far.
func printTables(w io.Writer, st *stats, rss []rssSample, at time.Duration) map[string]KindResult {
	st.mu.Lock()
	defer st.mu.Unlock()
	res := map[string]KindResult{}
	fmt.Fprintf(w, "--- %s\n", at.Round(time.Second))
	fmt.Fprintf(w, "%-13s %8s %9s %9s  %s\n", "kind", "requests", "p50 ms", "p99 ms", "status")
	for _, n := range slices.Sorted(maps.Keys(st.kinds)) {
		t := st.kinds[n]
		ms := slices.Clone(t.ms)
		sort.Float64s(ms)
		r := KindResult{Requests: len(ms), Status: maps.Clone(t.counts), P50MS: round1(loadkit.Percentile(ms, 50)),
			P99MS: round1(loadkit.Percentile(ms, 99)), Failures: slices.Clone(t.bad)}
		res[n] = r
		var parts []string
		for _, l := range slices.Sorted(maps.Keys(t.counts)) {
			parts = append(parts, fmt.Sprintf("%s ×%d", l, t.counts[l]))
		}
		fmt.Fprintf(w, "%-13s %8d %9.1f %9.1f  %s\n", n, r.Requests, r.P50MS, r.P99MS, strings.Join(parts, ", "))
	}
	if len(rss) > 0 {
		peak := slices.MaxFunc(rss, func(a, b rssSample) int { return int(a.RSSKB - b.RSSKB) })
		fmt.Fprintf(w, "RSS now %.0f MiB (first sample %.0f MiB, highest sample %.0f MiB at %.0fs)\n",
			mib(rss[len(rss)-1].RSSKB), mib(rss[0].RSSKB), mib(peak.RSSKB), peak.T)
	}
	return res
}

// medianRSS is the median of the samples taken in (from, to] seconds.
func medianRSS(rss []rssSample, from, to float64) int64 {
	var v []int64
	for _, s := range rss {
		if s.T > from && s.T <= to {
			v = append(v, s.RSSKB)
		}
	}
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	return v[len(v)/2]
}

// ---- traffic kinds ---------------------------------------------------------

// upload is a prepared request: body, Content-Type and Authorization values.
type upload struct {
	body  []byte
	ctype string
	auth  []string
}

func buildKinds(srv *loadkit.Service, iss *issuer.Issuer) ([]kind, error) {
	good := []string{"Bearer " + iss.Token(nil)}
	photos, photoData, err := photoBodies(*flagImages)
	if err != nil {
		return nil, err
	}
	form := func(name string, data []byte) upload {
		b, ct, err := loadkit.FormFile(name, data)
		if err != nil {
			panic(err) // writing to memory cannot fail
		}
		return upload{b, ct, good}
	}
	raw := func(ctype string, data []byte) upload { return upload{data, ctype, good} }

	noise := make([]byte, 64<<10)
	_, _ = rand.Read(noise)
	jpegHeadThenNoise := append([]byte("\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"), noise[:4096]...)
	photo := photos[0].body
	garbage := []upload{
		form("noise.jpg", noise),                              // 415 unsupported_image
		form("broken.jpg", jpegHeadThenNoise),                 // 422 corrupt_image
		form("empty.jpg", nil),                                // 400 file_empty
		raw("image/jpeg", noise),                              // 415 unsupported_image (a raw body)
		raw("text/plain", noise),                              // 415 unsupported_media_type
		raw("application/json", []byte(`{"file":"cat.jpg"}`)), // 400 file_missing
		raw("multipart/form-data; boundary="+loadkit.Boundary, photo[:len(photo)/2]), // 400: cut short
		raw("multipart/form-data", photo),                                            // 400: no boundary
		raw("multipart/form-data; boundary=x", noise[:1024]),                         // 400
	}
	bombList := []upload{
		form("strip.png", bombs.GreyPNG(1, 10_000_000)),                        // 413: aspect
		form("scans.jpg", bombs.ProgressiveJPEG(2048, 2048, 4000, true)),       // 422: over the scan limit
		form("valid-scans.jpg", bombs.ProgressiveJPEG(2048, 2048, 883, false)), // 422: over the scan limit
		form("scans16mp.jpg", bombs.ProgressiveJPEG(4096, 4096, 200, false)),   // 413: scan work
		form("rgba64.png", bombs.ZeroPNG(7000, 7000, 16, bombs.RGBA)),          // 413: decode memory
		form("rgba64-fits.png", bombs.ZeroPNG(2500, 2500, 16, bombs.RGBA)),     // decodes: 69 MB of budget
		form("header.png", bombs.PNGHeader(100000, 100000)),                    // 413: pixels
	}
	past := time.Now().Add(-time.Hour)
	tokens := []upload{}
	for _, a := range [][]string{
		nil, // no credentials: bare challenge
		{"Bearer " + iss.Token(map[string]any{"exp": past.Unix(), "iat": past.Add(-time.Hour).Unix()})},
		{"Bearer " + iss.Token(map[string]any{"scope": "read::other"})}, // 403
		{"Bearer " + iss.Token(map[string]any{"aud": "someone-else"})},
		{"Bearer " + iss.Token(map[string]any{"iss": "https://evil.example/"})},
		{"Bearer " + iss.TokenUnpublishedKey(nil)}, // unknown kid: spends the JWKS refetch budget
		{"Bearer " + iss.TokenHS256(nil, []byte("0123456789abcdef0123456789abcdef"))},
		{"Bearer not.a.jwt"},
		{"Basic dXNlcjpwYXNz"},
	} {
		u := photos[0]
		u.auth = a
		tokens = append(tokens, u)
	}
	dup := []upload{}
	for _, a := range [][]string{{good[0], good[0]}, {good[0], "Bearer forged"}} {
		u := photos[0]
		u.auth = a
		dup = append(dup, u)
	}
	for i := range photos {
		photos[i].auth = good
	}

	client := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 32, DisableCompression: true}}
	pick := func(list []upload) func(context.Context, *mrand.Rand) outcome {
		return func(ctx context.Context, rng *mrand.Rand) outcome {
			return do(ctx, client, srv.Base+"/upload", list[rng.IntN(len(list))], nil)
		}
	}
	// A second client, by its token's subject: admission shares the
	// pipeline fairly between it and the valid uploads.
	heavyAuth := []string{"Bearer " + iss.Token(map[string]any{"sub": "soak-heavy"})}
	var names []string
	var datas [][]byte
	for i := 0; i < 32; i++ {
		names, datas = append(names, fmt.Sprintf("%d.jpg", i)), append(datas, photoData[i%len(photoData)])
	}
	heavyBody, heavyType, err := loadkit.FormFiles(names, datas)
	if err != nil {
		return nil, err
	}
	heavy := upload{heavyBody, heavyType, heavyAuth}
	rogue, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	return []kind{
		{"valid", pick(photos)},
		{"trickle", func(ctx context.Context, rng *mrand.Rand) outcome {
			// A slow but honest client: the photo in 10 pieces over ~3 s.
			return do(ctx, client, srv.Base+"/upload", photos[rng.IntN(len(photos))], &trickle{pause: 300 * time.Millisecond})
		}},
		{"garbage", pick(garbage)},
		{"bomb", pick(bombList)},
		{"token", pick(tokens)},
		{"dup-auth", pick(dup)},
		{"slow-headers", func(ctx context.Context, _ *mrand.Rand) outcome { return slowHeaders(ctx, srv.Addr) }},
		{"slow-body", func(ctx context.Context, rng *mrand.Rand) outcome {
			return slowBody(ctx, srv.Addr, photos[rng.IntN(len(photos))])
		}},
		{"method", func(ctx context.Context, rng *mrand.Rand) outcome { return oddMethod(ctx, srv.Addr, rng) }},
		{"idle", func(ctx context.Context, _ *mrand.Rand) outcome { return idleKeepAlive(ctx, srv.Addr) }},
		{"stalled-predict", func(ctx context.Context, _ *mrand.Rand) outcome { return stalledPredict(ctx, srv.Addr, good[0]) }},
		{"heavy", func(ctx context.Context, _ *mrand.Rand) outcome {
			return do(ctx, client, srv.Base+"/predict", heavy, nil)
		}},
		{"forged-kid", func(ctx context.Context, rng *mrand.Rand) outcome {
			kid := fmt.Sprintf("forged-%016x", rng.Uint64())
			u := photos[0]
			u.auth = []string{"Bearer " + issuer.Sign(jose.RS256, rogue, kid, issuer.Claims(iss.URL, nil))}
			return do(ctx, client, srv.Base+"/upload", u, nil)
		}},
	}, nil
}

// oddMethod sends GET /health's request line with a random method token
// (every 8th 40 KB long): none may become a metric label or a 5xx.
func oddMethod(ctx context.Context, addr string, rng *mrand.Rand) outcome {
	n := 3 + rng.IntN(10)
	if rng.IntN(8) == 0 {
		n = 40 << 10
	}
	m := make([]byte, n)
	for i := range m {
		m[i] = 'A' + byte(rng.IntN(26))
	}
	t0 := time.Now()
	conn, err := dial(ctx, addr)
	if err != nil {
		return outcome{label: "dial error", bad: err.Error()}
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Minute))
	fmt.Fprintf(conn, "%s /health HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n", m)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return outcome{label: "closed", d: time.Since(t0)}
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return judge(resp.StatusCode, rb, time.Since(t0))
}

// idleKeepAlive asks for /health on a keep-alive connection, then leaves it
// idle for up to a minute: near MAX_CONNECTIONS the server closes such
// connections first. Either way is fine; the valid uploads beside it must
// still be served.
func idleKeepAlive(ctx context.Context, addr string) outcome {
	t0 := time.Now()
	conn, err := dial(ctx, addr)
	if err != nil {
		return outcome{label: "dial error", bad: err.Error()}
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Minute))
	io.WriteString(conn, "GET /health HTTP/1.1\r\nHost: soak\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return outcome{label: "closed before answering", d: time.Since(t0)}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return outcome{label: strconv.Itoa(resp.StatusCode), d: time.Since(t0), bad: "/health answered " + resp.Status}
	}
	if _, err := br.ReadByte(); errors.Is(err, os.ErrDeadlineExceeded) {
		return outcome{label: "idle 1m", d: time.Since(t0)}
	}
	return outcome{label: "closed by server", d: time.Since(t0)}
}

// stalledPredict announces a 32 MiB /predict body, sends its first 400
// bytes and stalls until the server's read timeout ends it: it must hold
// the memory budget for what it sent, not what it announced.
func stalledPredict(ctx context.Context, addr, auth string) outcome {
	const limit = 90 * time.Second
	t0 := time.Now()
	conn, failed := dialUntil(ctx, addr, limit)
	if conn == nil {
		return failed
	}
	defer conn.Close()
	part := "--" + loadkit.Boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n\r\n"
	fmt.Fprintf(conn, "POST /predict HTTP/1.1\r\nHost: soak\r\nAuthorization: %s\r\n"+
		"Content-Type: multipart/form-data; boundary=%s\r\nContent-Length: 33554000\r\n\r\n%s%s",
		auth, loadkit.Boundary, part, strings.Repeat("x", 400-len(part)))
	return awaitAnswer(conn, t0, "stalled /predict", limit)
}

// awaitAnswer reads the answer to a request that stalled: the server must
// answer or hang up before conn's deadline (limit from t0).
func awaitAnswer(conn net.Conn, t0 time.Time, what string, limit time.Duration) outcome {
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	switch {
	case err == nil:
		defer resp.Body.Close()
		rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		return judge(resp.StatusCode, rb, time.Since(t0))
	case errors.Is(err, os.ErrDeadlineExceeded):
		return outcome{label: "held open", d: time.Since(t0), bad: fmt.Sprintf("%s held open for %s", what, limit)}
	case isClosed(err):
		return outcome{label: "closed", d: time.Since(t0)}
	}
	return outcome{label: "read error", d: time.Since(t0), bad: err.Error()}
}

func photoBodies(dir string) ([]upload, [][]byte, error) {
	photos, err := loadkit.Photos(dir)
	var out []upload
	var raw [][]byte
	for _, p := range photos {
		out, raw = append(out, upload{body: p.Form, ctype: p.FormType}), append(raw, p.Data)
	}
	if err != nil {
		err = fmt.Errorf("-images: %w", err)
	}
	return out, raw, err
}

// trickle sends a body in 10 pieces with a pause between them.
type trickle struct {
	data  []byte
	step  int
	pause time.Duration
	sent  bool
}

func (t *trickle) Read(p []byte) (int, error) {
	if len(t.data) == 0 {
		return 0, io.EOF
	}
	if t.sent {
		time.Sleep(t.pause)
	}
	t.sent = true
	n := copy(p, t.data[:min(t.step, len(t.data))])
	t.data = t.data[n:]
	return n, nil
}

// do sends u and labels the answer "STATUS" or "STATUS code". Any 5xx but
// the deliberate 503s, and a request that gets no answer, break the rules.
func do(ctx context.Context, client *http.Client, url string, u upload, slow *trickle) outcome {
	var body io.Reader = bytes.NewReader(u.body)
	if slow != nil {
		slow.data, slow.step = u.body, len(u.body)/10+1
		body = slow
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, body)
	if err != nil {
		return outcome{label: "client error", bad: err.Error()}
	}
	req.ContentLength = int64(len(u.body))
	if u.ctype != "" {
		req.Header.Set("Content-Type", u.ctype)
	}
	req.Header["Authorization"] = u.auth
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return outcome{label: "transport error", d: time.Since(t0), bad: "no answer: " + err.Error()}
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return judge(resp.StatusCode, rb, time.Since(t0))
}

func judge(status int, body []byte, d time.Duration) outcome {
	o := outcome{label: strconv.Itoa(status), d: d}
	if status >= 400 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		o.label += " " + e.Error
		if status >= 500 && !(status == http.StatusServiceUnavailable && (e.Error == "busy" || e.Error == "auth_unavailable")) {
			o.bad = fmt.Sprintf("%d %s", status, strings.TrimSpace(string(body)))
		}
	}
	return o
}

// slowHeaders is a slowloris client: a request line and one header line every
// 2 s, never the blank line that ends the headers. The server must hang up
// (ReadHeaderTimeout); holding on past headerLimit breaks the rules.
func slowHeaders(ctx context.Context, addr string) outcome {
	const headerLimit = 30 * time.Second
	t0 := time.Now()
	conn, err := dial(ctx, addr)
	if err != nil {
		return outcome{label: "dial error", bad: err.Error()}
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST /upload HTTP/1.1\r\nHost: soak\r\n"); err != nil {
		return outcome{label: "closed", d: time.Since(t0)}
	}
	closed := make(chan struct{})
	go func() { // the server hanging up shows as a read ending
		_, _ = io.Copy(io.Discard, conn)
		close(closed)
	}()
	for i := 0; ; i++ {
		select {
		case <-closed:
			return outcome{label: "closed", d: time.Since(t0)}
		case <-time.After(2 * time.Second):
		}
		if time.Since(t0) > headerLimit {
			return outcome{label: "held open", d: time.Since(t0), bad: fmt.Sprintf("unfinished headers held open for %s", headerLimit)}
		}
		if _, err := fmt.Fprintf(conn, "X-Slow-%d: %d\r\n", i, i); err != nil && !isClosed(err) {
			return outcome{label: "write error", d: time.Since(t0), bad: err.Error()}
		}
	}
}

// slowBody sends complete headers with a valid token and half of the body it
// announced, then stalls. The server must answer or hang up once its read
// timeout (60 s) passes; nothing by bodyLimit breaks the rules.
func slowBody(ctx context.Context, addr string, u upload) outcome {
	const bodyLimit = 90 * time.Second
	t0 := time.Now()
	conn, failed := dialUntil(ctx, addr, bodyLimit)
	if conn == nil {
		return failed
	}
	defer conn.Close()
	head := fmt.Sprintf("POST /upload HTTP/1.1\r\nHost: soak\r\nAuthorization: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n",
		u.auth[0], u.ctype, len(u.body))
	if _, err := io.WriteString(conn, head); err != nil {
		return outcome{label: "closed", d: time.Since(t0)}
	}
	_, _ = conn.Write(u.body[:len(u.body)/2])
	return awaitAnswer(conn, t0, "stalled body", bodyLimit)
}

// dial connects to addr; the connection closes when ctx ends, so a stalled
// client does not outlive the run.
func dial(ctx context.Context, addr string) (net.Conn, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err == nil {
		context.AfterFunc(ctx, func() { conn.Close() })
	}
	return conn, err
}

// dialUntil connects for a stalling client whose connection must end by
// limit; on failure it returns the outcome to record instead.
func dialUntil(ctx context.Context, addr string, limit time.Duration) (net.Conn, outcome) {
	conn, err := dial(ctx, addr)
	if err != nil {
		return nil, outcome{label: "dial error", bad: err.Error()}
	}
	_ = conn.SetDeadline(time.Now().Add(limit))
	return conn, outcome{}
}

func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func mib(kb int64) float64 { return float64(kb) / 1024 }

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }
