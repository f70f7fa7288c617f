// Command bench measures the service the way issue "fast on a small CPU" asks,
// in one go and on one machine state, and prints one table:
//
//  1. Go benchmarks (model package): bytes → tensor for a 500×375 and a
//     4032×3024 JPEG, bare ONNX Runtime inference at batch 1;
//  2. an HTTP load test against the real binary with auth on (token from the
//     test issuer), 500×375 photos made from ../shared/datasets/pets/test, at
//     concurrency 1, 8 and 32, with peak RSS; then 20,000 requests to check
//     RSS does not grow between request 10,000 and 20,000;
//  3. the floor: capacity = cores ÷ (preprocess + inference CPU time per image),
//     and the ratio of measured HTTP throughput to it.
//
// Run with `make bench`. Figures are medians where repeated.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/jpeg"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"catsdogs/tests/issuer"
	"catsdogs/tools/internal/loadkit"

	"golang.org/x/image/draw"
)

var (
	flagData     = flag.String("data", "../shared/datasets/pets", "dataset root")
	flagBin      = flag.String("bin", "bin/catsdogs", "service binary")
	flagLoad     = flag.String("loadtest", "bin/loadtest", "load generator binary")
	flagCount    = flag.Int("count", 5, "repetitions of each Go benchmark (median reported)")
	flagDuration = flag.Duration("d", 20*time.Second, "duration of each HTTP load phase")
	flagSoak     = flag.Int("soak", 10000, "requests per soak phase (RSS measured after each of two)")
	flagOut      = flag.String("out", "build/bench", "where to write results.json and logs")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type loadResult struct {
	Concurrency int
	Raw         map[string]any
}

func run() error {
	if err := os.MkdirAll(*flagOut, 0o755); err != nil {
		return err
	}
	cores := runtime.NumCPU()
	fmt.Printf("machine: %d CPUs, GOMAXPROCS %d, %s\n", cores, runtime.GOMAXPROCS(0), cpuModel())

	// 1. Go benchmarks.
	fmt.Println("running Go benchmarks (model package)...")
	benches, err := goBench()
	if err != nil {
		return err
	}

	// 2. HTTP load test against the real binary, auth on.
	imgDir := filepath.Join(*flagOut, "photos-500x375")
	n, err := makePhotos(imgDir, 500, 375, 48)
	if err != nil {
		return err
	}
	fmt.Printf("made %d 500x375 JPEGs from %s/test in %s\n", n, *flagData, imgDir)
	iss, err := issuer.Start()
	if err != nil {
		return err
	}
	defer iss.Close()
	token := iss.Token(nil)

	t0 := time.Now()
	srv, err := loadkit.Start(*flagBin, []string{"OAUTH2_ISSUER=" + iss.URL, "OAUTH2_AUDIENCE=" + issuer.DefaultAudience,
		"AUTH_DISABLED=false", "LOG_FORMAT=json"}, filepath.Join(*flagOut, "server.log"), 30*time.Second)
	if err != nil {
		return err
	}
	defer srv.Stop()
	base := srv.Base
	startToReady := time.Since(t0)
	fmt.Printf("start → ready: %s\n", startToReady.Round(time.Millisecond))
	pid := strconv.Itoa(srv.Cmd.Process.Pid)

	var loads []loadResult
	for _, c := range []int{1, 8, 32} {
		fmt.Printf("load: c=%d for %s...\n", c, *flagDuration)
		raw, err := loadtest("-url", base+"/upload", "-token", token, "-images", imgDir, "-c", strconv.Itoa(c),
			"-d", flagDuration.String(), "-pid", pid, "-json")
		if err != nil {
			return err
		}
		loads = append(loads, loadResult{c, raw})
	}
	fmt.Printf("soak: 2 x %d requests at c=8...\n", *flagSoak)
	soak1, err := loadtest("-url", base+"/upload", "-token", token, "-images", imgDir, "-c", "8", "-n", strconv.Itoa(*flagSoak), "-pid", pid, "-json")
	if err != nil {
		return err
	}
	rss1 := num(soak1, "rss_kb") / 1024
	soak2, err := loadtest("-url", base+"/upload", "-token", token, "-images", imgDir, "-c", "8", "-n", strconv.Itoa(*flagSoak), "-pid", pid, "-json")
	if err != nil {
		return err
	}
	rss2 := num(soak2, "rss_kb") / 1024
	peak := num(soak2, "rss_peak_kb") / 1024

	// 3. The floor and the table.
	pre, inf := benches["PreprocessSmall"], benches["Inference"]
	floor := float64(cores) / ((pre + inf) / 1e9)
	fmt.Println()
	fmt.Println("| measure | value |")
	fmt.Println("|---|---|")
	row := func(k, v string) { fmt.Printf("| %s | %s |\n", k, v) }
	for _, k := range []string{"PreprocessSmall", "PreprocessLarge12MP", "PreprocessSmallPureGo", "PreprocessLarge12MPPureGo", "Inference", "ClassifyEndToEnd"} {
		if v, ok := benches[k]; ok {
			row("Go bench "+k+" (median ns/op → ms)", fmt.Sprintf("%.2f ms", v/1e6))
		}
	}
	row("floor = cores ÷ (preprocess 500×375 + inference)", fmt.Sprintf("%d ÷ (%.2f + %.2f ms) = %.0f req/s", cores, pre/1e6, inf/1e6, floor))
	row("start → ready", startToReady.Round(time.Millisecond).String())
	fmt.Println()
	fmt.Println("| concurrency | req/s | ratio to floor | p50 ms | p95 ms | p99 ms | p99/p50 | 200s | 503s | other errors | peak RSS MB |")
	fmt.Println("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, l := range loads {
		r := l.Raw
		rps := num(r, "ok_rps") // throughput of answered classifications
		lat, _ := r["latency_ms"].(map[string]any)
		p50, p99 := num(lat, "p50"), num(lat, "p99")
		codes := statusCounts(r)
		other := int(num(r, "transport_errors"))
		for code, n := range codes {
			if code != "200" && code != "503" {
				other += n
			}
		}
		fmt.Printf("| %d | %.1f | %.2f | %.1f | %.1f | %.1f | %.2f | %d | %d | %d | %.0f |\n", l.Concurrency, rps, rps/floor,
			p50, num(lat, "p95"), p99, p99/p50, codes["200"], codes["503"], other, num(r, "rss_peak_kb")/1024)
	}
	fmt.Println()
	growth := (rss2 - rss1) / rss1 * 100
	fmt.Printf("RSS after request %d: %.1f MB; after %d: %.1f MB; growth %.1f %%; peak RSS over the run %.1f MB\n",
		*flagSoak, rss1, 2**flagSoak, rss2, growth, peak)

	res := map[string]any{"cores": cores, "go_bench_ns": benches, "floor_rps": floor, "start_to_ready_ms": startToReady.Milliseconds(),
		"loads": loads, "soak": []map[string]any{soak1, soak2}, "rss_growth_pct": growth, "peak_rss_mb": peak}
	b, _ := json.MarshalIndent(res, "", " ")
	return os.WriteFile(filepath.Join(*flagOut, "results.json"), b, 0o644)
}

var benchLine = regexp.MustCompile(`^Benchmark(\w+?)(-\d+)?\s+\d+\s+([\d.]+) ns/op`)

// goBench runs the model benchmarks and returns the median ns/op of each.
func goBench() (map[string]float64, error) {
	cmd := exec.Command("go", "test", "./model/", "-run", "^$", "-bench",
		"^Benchmark(PreprocessSmall|PreprocessLarge12MP|PreprocessSmallPureGo|PreprocessLarge12MPPureGo|Inference|ClassifyEndToEnd)$",
		"-benchtime", "40x", "-count", strconv.Itoa(*flagCount))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go test -bench: %v\n%s", err, out.String())
	}
	_ = os.WriteFile(filepath.Join(*flagOut, "gobench.txt"), out.Bytes(), 0o644)
	all := map[string][]float64{}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		if m := benchLine.FindStringSubmatch(sc.Text()); m != nil {
			v, _ := strconv.ParseFloat(m[3], 64)
			all[m[1]] = append(all[m[1]], v)
		}
	}
	med := map[string]float64{}
	for k, v := range all {
		sort.Float64s(v)
		med[k] = v[len(v)/2]
	}
	for _, need := range []string{"PreprocessSmall", "Inference"} {
		if _, ok := med[need]; !ok {
			return nil, fmt.Errorf("benchmark %s missing from output:\n%s", need, out.String())
		}
	}
	return med, nil
}

func loadtest(args ...string) (map[string]any, error) {
	var out bytes.Buffer
	cmd := exec.Command(*flagLoad, args...)
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("loadtest: %v", err)
	}
	var r map[string]any
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return nil, fmt.Errorf("loadtest output: %v: %s", err, out.String())
	}
	return r, nil
}

func num(m map[string]any, k string) float64 {
	if v, ok := m[k].(float64); ok {
		return v
	}
	return 0
}

func statusCounts(m map[string]any) map[string]int {
	out := map[string]int{}
	if s, ok := m["status"].(map[string]any); ok {
		for k, v := range s {
			if f, ok := v.(float64); ok {
				out[k] = int(f)
			}
		}
	}
	return out
}

// makePhotos writes n real test photos resized to w×h (JPEG q90): the
// dataset's own files are small (160 px shorter side), users send bigger.
func makePhotos(dir string, w, h, n int) (int, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	var files []string
	for _, c := range []string{"cat", "dog", "other"} {
		m, _ := filepath.Glob(filepath.Join(*flagData, "test", c, "*.jpg"))
		sort.Strings(m)
		if len(m) > n/3 {
			m = m[:n/3]
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		return 0, fmt.Errorf("no photos under %s/test", *flagData)
	}
	for i, f := range files {
		src, err := os.Open(f)
		if err != nil {
			return 0, err
		}
		img, _, err := image.Decode(src)
		src.Close()
		if err != nil {
			return 0, fmt.Errorf("%s: %v", f, err)
		}
		dst := image.NewRGBA(image.Rect(0, 0, w, h))
		draw.CatmullRom.Scale(dst, dst.Bounds(), img, img.Bounds(), draw.Src, nil)
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, dst, &jpeg.Options{Quality: 90}); err != nil {
			return 0, err
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%03d.jpg", i)), buf.Bytes(), 0o644); err != nil {
			return 0, err
		}
	}
	return len(files), nil
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			return strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
		}
	}
	return "unknown CPU"
}
