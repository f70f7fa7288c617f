// Command bench measures the service the way issues "fast on a small CPU"
// and "throughput" ask, in one go and on one machine state, and prints
// tables:
//
//  1. Go benchmarks (model package): bytes → tensor for a 500×375 and a
//     4032×3024 JPEG, bare ONNX Runtime inference at batch 1 on one thread,
//     of the fp32 model and of its int8 copy; the floor = cores ÷
//     (preprocess 500×375 + inference of what is served), the most a
//     single-image pipeline could serve if nothing else used the CPU; and
//     Classify from every core at once (ClassifyAllCores), what the cores
//     really do without HTTP once they slow each other down;
//  2. HTTP load against the real binary with auth on (token from the test
//     issuer): dynamic batching on (the default) and off (BATCH_MAX_SIZE=1),
//     500×375 photos at c=1, 8, 32 and 12 MP photos at c=4; the same at
//     c=1, 8 and 12 MP with MODEL_PRECISION=fp32 beside the default (int8
//     where it is served), with the server's CPU per answer; /predict with
//     1 and 8 images per request; the Open Inference Protocol's REST infer
//     (base64 JPEG in JSON) at c=1 and 8 beside /upload; and the same photos against two peers
//     serving the same ONNX model (int8 where they can) with the same preprocessing and no auth
//     (tools/bench/peers.go: fastify + sharp + onnxruntime-node, FastAPI +
//     uvicorn + OpenCV). Every server is started once; the phases run in
//     -rounds interleaved rounds and each figure is the median of its rounds,
//     so a slow moment on a shared machine touches every server alike;
//  3. the targets of issues 13 and 25, each said met or not;
//  4. 2 × -soak requests at c=8: RSS must not grow between them.
//
// Run with `make bench` (which installs the peers first: make bench-peers).
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/jpeg"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"catsdogs/model"
	"catsdogs/resources"
	"catsdogs/tests/issuer"
	"catsdogs/tools/internal/loadkit"

	"golang.org/x/image/draw"
)

var (
	flagData     = flag.String("data", "../shared/datasets/pets", "dataset root")
	flagBin      = flag.String("bin", "bin/catsdogs", "service binary")
	flagLoad     = flag.String("loadtest", "bin/loadtest", "load generator binary")
	flagModel    = flag.String("model", resources.DefaultModel, "the ONNX model every server serves")
	flagCount    = flag.Int("count", 5, "repetitions of each Go benchmark (median reported)")
	flagDuration = flag.Duration("d", 10*time.Second, "duration of each HTTP load phase")
	flagRounds   = flag.Int("rounds", 3, "interleaved rounds of every HTTP phase (median reported)")
	flagPeers    = flag.Bool("peers", true, "also measure the peers (fastify, fastapi)")
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

// target is one server under load.
type target struct {
	name, url, token string // url of its single-image endpoint
	pid              int
}

// phase is one load: a target, a photo set, concurrency, images per request.
type phase struct {
	target      *target
	photos      string // "500x375" or "12MP"
	c, files    int
	path        string // "" : the target's url; else a path on the same server
	form        string // the load generator's -body: "" multipart, or oip
	runs        []map[string]any
	description string
}

func (p *phase) key() string {
	k := fmt.Sprintf("%s %s c=%d", p.target.name, p.photos, p.c)
	if p.files > 1 || p.path != "" {
		k += fmt.Sprintf(" files=%d", p.files)
	}
	if p.form != "" {
		k += " " + p.form
	}
	return k
}

// median of a loadtest figure over the phase's rounds.
func (p *phase) median(get func(map[string]any) float64) float64 {
	var v []float64
	for _, r := range p.runs {
		v = append(v, get(r))
	}
	return median(v)
}

func run() error {
	if err := os.MkdirAll(*flagOut, 0o755); err != nil {
		return err
	}
	cores := runtime.GOMAXPROCS(0) // the CPU quota, as the service sizes itself
	fmt.Printf("machine: %d CPUs, GOMAXPROCS %d, %s\n", cores, runtime.GOMAXPROCS(0), cpuModel())
	if *flagPeers {
		if err := peersAvailable(); err != nil {
			return fmt.Errorf("%w\n(or run with -peers=false to measure the service alone)", err)
		}
	}

	// 1. Go benchmarks.
	fmt.Println("running Go benchmarks (model package)...")
	int8Path := model.Int8Path(*flagModel)
	if _, err := os.Stat(int8Path); err != nil {
		int8Path = "" // no copy: fp32 alone
	}
	benches, err := goBench(int8Path)
	if err != nil {
		return err
	}
	pre, inf := benches["PreprocessSmall"], benches["Inference"]
	floor := float64(cores) / ((pre + inf) / 1e9)
	floor32 := floor // MODEL_PRECISION=fp32's, whatever the default serves

	// 2. Photos and servers.
	photoDirs := map[string]string{"500x375": filepath.Join(*flagOut, "photos-500x375"), "12MP": filepath.Join(*flagOut, "photos-12mp")}
	for name, size := range map[string][3]int{"500x375": {500, 375, 48}, "12MP": {4032, 3024, 6}} {
		n, err := makePhotos(photoDirs[name], size[0], size[1], size[2])
		if err != nil {
			return err
		}
		fmt.Printf("%d %s JPEGs from %s/test in %s\n", n, name, *flagData, photoDirs[name])
	}
	iss, err := issuer.Start()
	if err != nil {
		return err
	}
	defer iss.Close()
	token := iss.Token(nil)
	authEnv := []string{"OAUTH2_ISSUER=" + iss.URL, "OAUTH2_AUDIENCE=" + issuer.DefaultAudience,
		"AUTH_DISABLED=false", "LOG_FORMAT=json", "MODEL_PATH=" + *flagModel}

	t0 := time.Now()
	on, err := startService("catsdogs", authEnv, token)
	if err != nil {
		return err
	}
	defer on.stop()
	startToReady := time.Since(t0)
	fmt.Printf("start → ready: %s\n", startToReady.Round(time.Millisecond))
	off, err := startService("catsdogs-nobatch", append(authEnv, "BATCH_MAX_SIZE=1"), token)
	if err != nil {
		return err
	}
	defer off.stop()
	fp32, err := startService("catsdogs-fp32", append(authEnv, "MODEL_PRECISION="+model.PrecisionFP32), token)
	if err != nil {
		return err
	}
	defer fp32.stop()
	targets := []*target{on.target, off.target, fp32.target}
	onBase := on.target.url[:strings.LastIndex(on.target.url, "/upload")]
	if err := checkPredict(onBase, token, photoDirs["500x375"]); err != nil {
		return err
	}
	var info struct {
		Name      string                `json:"name"`
		File      string                `json:"file"`
		DelayMS   float64               `json:"batch_max_delay_ms"`
		Precision model.PrecisionChoice `json:"precision"`
	}
	if resp, err := http.Get(onBase + "/model"); err == nil {
		_ = json.NewDecoder(resp.Body).Decode(&info)
		resp.Body.Close()
	}
	batchDelayMS = info.DelayMS
	fmt.Printf("catsdogs serves %s (%s): %s\n", info.File, info.Precision.Served, info.Precision.Reason)
	// The floor of what is served: the int8 copy's inference when it is.
	served := *flagModel
	ceiling := benches["ClassifyAllCores"] // ns per image, every core busy
	if info.Precision.Served == model.PrecisionInt8 && int8Path != "" {
		served = int8Path
		floor = float64(cores) / ((pre + benches["InferenceInt8"]) / 1e9)
		ceiling = benches["ClassifyAllCoresInt8"]
	}
	if *flagPeers {
		spec, err := fetchPreprocessing(onBase, token)
		if err != nil {
			return err
		}
		for _, name := range peerNames {
			// A peer serves what we serve where its runtime can (int8
			// included), else the fp32 model, as its users would.
			base, pid, stop, err := startPeer(name, served, spec, filepath.Join(*flagOut, name+".log"))
			if err != nil && served != *flagModel {
				fmt.Printf("peer %s cannot serve %s (%v): it serves the fp32 model\n", name, filepath.Base(served), err)
				base, pid, stop, err = startPeer(name, *flagModel, spec, filepath.Join(*flagOut, name+".log"))
			}
			if err != nil {
				// A peer's runtime may not read every model: compare with
				// the peers that can, and say so.
				fmt.Printf("SKIPPED peer %s: it cannot serve this model: %v\n", name, err)
				continue
			}
			defer stop()
			targets = append(targets, &target{name: name, url: base + "/upload", pid: pid})
		}
	}

	// The phases, in the order each round runs them.
	var phases []*phase
	add := func(t *target, photos string, c, files int, path string) {
		phases = append(phases, &phase{target: t, photos: photos, c: c, files: files, path: path})
	}
	for _, t := range targets {
		cs := []int{1, 8, 32}
		if t.name != "catsdogs" && t.name != "catsdogs-nobatch" {
			cs = []int{1, 8}
		}
		for _, c := range cs {
			add(t, "500x375", c, 1, "")
		}
		add(t, "12MP", 4, 1, "")
	}
	add(on.target, "500x375", 4, 1, "/predict")
	add(on.target, "500x375", 4, 8, "/predict")
	// The Open Inference Protocol's REST infer (base64 JPEG in JSON) beside
	// /upload's multipart, same photos and concurrency (issue 24: within 10 %).
	oipPath := "/v2/models/" + info.Name + "/infer"
	for _, c := range []int{1, 8} {
		add(on.target, "500x375", c, 1, oipPath)
		phases[len(phases)-1].form = "oip"
	}
	for round := 1; round <= *flagRounds; round++ {
		for _, p := range phases {
			fmt.Printf("round %d/%d: %s for %s...\n", round, *flagRounds, p.key(), *flagDuration)
			url := p.target.url
			if p.path != "" {
				url = url[:strings.LastIndex(url, "/")] + p.path
			}
			args := []string{"-url", url, "-images", photoDirs[p.photos], "-c", strconv.Itoa(p.c),
				"-d", flagDuration.String(), "-warmup", strconv.Itoa(2 * p.c), "-files", strconv.Itoa(p.files),
				"-pid", strconv.Itoa(p.target.pid), "-json", "-timeout", "60s"}
			if p.form != "" {
				args = append(args, "-body", p.form)
			}
			if p.target.token != "" {
				args = append(args, "-token", p.target.token)
			}
			raw, err := loadtest(args...)
			if err != nil {
				return fmt.Errorf("%s: %w", p.key(), err)
			}
			p.runs = append(p.runs, raw)
		}
	}

	// 3. Tables.
	fmt.Println()
	fmt.Println("| measure | value |")
	fmt.Println("|---|---|")
	row := func(k, v string) { fmt.Printf("| %s | %s |\n", k, v) }
	for _, k := range []string{"PreprocessSmall", "PreprocessLarge12MP", "PreprocessSmallPureGo", "PreprocessLarge12MPPureGo", "Inference", "ClassifyEndToEnd"} {
		if v, ok := benches[k]; ok {
			row("Go bench "+k+" (median ns/op → ms)", fmt.Sprintf("%.2f ms", v/1e6))
		}
	}
	row("floor (fp32) = cores ÷ (preprocess 500×375 + inference)", fmt.Sprintf("%d ÷ (%.2f + %.2f ms) = %.0f req/s", cores, pre/1e6, inf/1e6,
		float64(cores)/((pre+inf)/1e9)))
	if i8, ok := benches["InferenceInt8"]; ok {
		row("Go bench InferenceInt8 (median ns/op → ms)", fmt.Sprintf("%.2f ms = %.2f× fp32's", i8/1e6, i8/inf))
		row("floor (int8) = cores ÷ (preprocess 500×375 + int8 inference)", fmt.Sprintf("%d ÷ (%.2f + %.2f ms) = %.0f req/s", cores, pre/1e6, i8/1e6,
			float64(cores)/((pre+i8)/1e9)))
	}
	row("floor of what catsdogs serves ("+info.Precision.Served+"), used below", fmt.Sprintf("%.0f req/s", floor))
	for _, k := range []string{"ClassifyAllCores", "ClassifyAllCoresInt8"} {
		if v, ok := benches[k]; ok {
			row("Go bench "+k+": every core classifying at once, no HTTP", fmt.Sprintf("%.2f ms per image = %.0f images/s", v/1e6, 1e9/v))
		}
	}
	row("start → ready", startToReady.Round(time.Millisecond).String())
	fmt.Println()
	fmt.Printf("HTTP, medians of %d interleaved %s rounds (catsdogs with auth, peers without; images/s = req/s × images per request):\n\n", *flagRounds, *flagDuration)
	fmt.Println("| server | photos | c | images/req | req/s | images/s | ratio to floor | p50 ms | p99 ms | p99/p50 | CPU ms/req | 200s | 503s | other errors | peak RSS MB |")
	fmt.Println("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	byKey := map[string]*phase{}
	for _, p := range phases {
		byKey[p.key()] = p
		rps := p.median(func(r map[string]any) float64 { return num(r, "ok_rps") })
		ips := p.median(func(r map[string]any) float64 { return num(r, "images_per_s") })
		p50 := p.median(func(r map[string]any) float64 { return num(sub(r, "latency_ms"), "p50") })
		p99 := p.median(func(r map[string]any) float64 { return num(sub(r, "latency_ms"), "p99") })
		cpu := p.median(func(r map[string]any) float64 { return num(r, "cpu_ms_per_ok") })
		ok, shed, other := 0, 0, 0
		var rss float64
		for _, r := range p.runs {
			codes := statusCounts(r)
			ok += codes["200"]
			shed += codes["503"]
			other += int(num(r, "transport_errors"))
			for code, n := range codes {
				if code != "200" && code != "503" {
					other += n
				}
			}
			rss = max(rss, num(r, "rss_peak_kb")/1024)
		}
		ratio := "—"
		if p.photos == "500x375" {
			f := floor
			if p.target.name == "catsdogs-fp32" {
				f = floor32
			}
			ratio = fmt.Sprintf("%.2f", ips/f)
		}
		fmt.Printf("| %s%s | %s | %d | %d | %.1f | %.1f | %s | %.1f | %.1f | %.2f | %.2f | %d | %d | %d | %.0f |\n", p.target.name, p.path, p.photos, p.c, p.files,
			rps, ips, ratio, p50, p99, p99/p50, cpu, ok, shed, other, rss)
	}
	fmt.Println()
	verdicts := targetsMet(byKey, floor, ceiling, benches)
	for _, c := range []int{1, 8} {
		up, infer := byKey[fmt.Sprintf("catsdogs 500x375 c=%d", c)], byKey[fmt.Sprintf("catsdogs 500x375 c=%d files=1 oip", c)]
		rps := func(p *phase) float64 { return p.median(func(r map[string]any) float64 { return num(r, "ok_rps") }) }
		if up != nil && infer != nil && rps(up) > 0 {
			ratio := rps(infer) / rps(up)
			verdicts = append(verdicts, fmt.Sprintf("REST infer (v2, base64 JSON) at c=%d: %.1f req/s, %.0f %% of /upload's %.1f (target: within 10 %%): %s",
				c, rps(infer), 100*ratio, rps(up), map[bool]string{true: "met", false: "NOT met"}[ratio >= 0.9]))
		}
	}
	for _, v := range verdicts {
		fmt.Println(v)
	}

	// 4. Soak on the default service.
	fmt.Printf("\nsoak: 2 x %d requests at c=8...\n", *flagSoak)
	soak := func() (map[string]any, error) {
		return loadtest("-url", on.target.url, "-token", token, "-images", photoDirs["500x375"], "-c", "8",
			"-n", strconv.Itoa(*flagSoak), "-pid", strconv.Itoa(on.target.pid), "-json")
	}
	soak1, err := soak()
	if err != nil {
		return err
	}
	soak2, err := soak()
	if err != nil {
		return err
	}
	rss1, rss2 := num(soak1, "rss_kb")/1024, num(soak2, "rss_kb")/1024
	growth := (rss2 - rss1) / rss1 * 100
	fmt.Printf("RSS after request %d: %.1f MB; after %d: %.1f MB; growth %.1f %%; peak RSS over the run %.1f MB\n",
		*flagSoak, rss1, 2**flagSoak, rss2, growth, num(soak2, "rss_peak_kb")/1024)

	out := map[string]any{"cores": cores, "cpu": cpuModel(), "go_bench_ns": benches, "floor_rps": floor,
		"start_to_ready_ms": startToReady.Milliseconds(), "rounds": *flagRounds, "phase_s": flagDuration.Seconds(),
		"targets": verdicts, "soak": []map[string]any{soak1, soak2}, "rss_growth_pct": growth}
	ph := map[string]any{}
	for _, p := range phases {
		ph[p.key()] = p.runs
	}
	out["phases"] = ph
	b, _ := json.MarshalIndent(out, "", " ")
	return os.WriteFile(filepath.Join(*flagOut, "results.json"), b, 0o644)
}

// batchDelayMS is the batching service's BATCH_MAX_DELAY, from its GET /model.
var batchDelayMS float64

// checkPredict sends one /predict of 8 photos and wants every item
// classified: loadtest counts images per request, not per answered item.
func checkPredict(base, token, dir string) error {
	files, _ := filepath.Glob(filepath.Join(dir, "*.jpg"))
	var names []string
	var parts [][]byte
	for _, f := range files[:min(8, len(files))] {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		names, parts = append(names, filepath.Base(f)), append(parts, data)
	}
	body, ct, err := loadkit.FormFiles(names, parts)
	if err != nil {
		return err
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/predict", bytes.NewReader(body))
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var got struct{ Count, Failed int }
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusOK || got.Failed != 0 {
		return fmt.Errorf("/predict check: status %d, %+v, %v", resp.StatusCode, got, err)
	}
	return nil
}

// service is one instance of the binary under test.
type service struct {
	target *target
	stop   func()
}

func startService(name string, env []string, token string) (*service, error) {
	srv, err := loadkit.Start(*flagBin, env, filepath.Join(*flagOut, name+".log"), 60*time.Second)
	if err != nil {
		return nil, err
	}
	return &service{target: &target{name: name, url: srv.Base + "/upload", token: token, pid: srv.Cmd.Process.Pid}, stop: srv.Stop}, nil
}

// targetsMet words issue 13's targets against the medians.
// ceiling is ClassifyAllCores' ns per image for the model served (0: none).
func targetsMet(by map[string]*phase, floor, ceiling float64, benches map[string]float64) []string {
	get := func(key string, f func(map[string]any) float64) (float64, bool) {
		p, ok := by[key]
		if !ok {
			return 0, false
		}
		return p.median(f), true
	}
	rps := func(r map[string]any) float64 { return num(r, "ok_rps") }
	p50 := func(r map[string]any) float64 { return num(sub(r, "latency_ms"), "p50") }
	p99 := func(r map[string]any) float64 { return num(sub(r, "latency_ms"), "p99") }
	verdict := func(ok bool) string {
		if ok {
			return "MET"
		}
		return "NOT MET"
	}
	var out []string
	best := func(photos string, c int) (string, float64) {
		name, v := "", 0.0
		for _, peer := range peerNames {
			if x, ok := get(fmt.Sprintf("%s %s c=%d", peer, photos, c), rps); ok && x > v {
				name, v = peer, x
			}
		}
		return name, v
	}
	if i8, ok := benches["InferenceInt8"]; ok {
		r := i8 / benches["Inference"]
		out = append(out, fmt.Sprintf("target int8 inference ≤ 0.6× fp32: %.2f vs %.2f ms = %.2f× — %s", i8/1e6, benches["Inference"]/1e6, r, verdict(r <= 0.6)))
	}
	ours8, _ := get("catsdogs 500x375 c=8", rps)
	if peer, v := best("500x375", 8); v > 0 {
		line := fmt.Sprintf("target c=8 500×375 ≥ 2.5× the best peer: %.1f vs %s %.1f req/s = %.2f× — %s", ours8, peer, v, ours8/v, verdict(ours8 >= 2.5*v))
		if ceiling > 0 { // what would be needed against what the cores do without HTTP
			line += fmt.Sprintf(" (needs %.0f req/s; every core classifying without HTTP: %.0f images/s)", 2.5*v, 1e9/ceiling)
		}
		out = append(out, line)
	}
	out = append(out, fmt.Sprintf("target c=8 500×375 ≥ 0.85 of the floor of what is served: %.1f ÷ %.0f = %.2f — %s", ours8, floor, ours8/floor, verdict(ours8 >= 0.85*floor)))
	ours12, _ := get("catsdogs 12MP c=4", rps)
	if peer, v := best("12MP", 4); v > 0 {
		out = append(out, fmt.Sprintf("target 12 MP c=4 ≥ 1.5× the best peer: %.1f vs %s %.1f req/s = %.2f× — %s", ours12, peer, v, ours12/v, verdict(ours12 >= 1.5*v)))
	}
	on1, _ := get("catsdogs 500x375 c=1", p50)
	off1, _ := get("catsdogs-nobatch 500x375 c=1", p50)
	delay := batchDelayMS
	out = append(out, fmt.Sprintf("target c=1 p50 with batching ≤ without + max delay: %.2f vs %.2f + %.0f ms — %s", on1, off1, delay, verdict(on1 <= off1+delay)))
	on8p50, _ := get("catsdogs 500x375 c=8", p50)
	on8p99, _ := get("catsdogs 500x375 c=8", p99)
	out = append(out, fmt.Sprintf("target c=8 p99 ≤ 3× p50: %.1f vs 3 × %.1f ms — %s", on8p99, on8p50, verdict(on8p99 <= 3*on8p50)))
	if p, ok := by["catsdogs 500x375 c=32"]; ok {
		bad, rss := 0, 0.0
		for _, r := range p.runs {
			bad += int(num(r, "transport_errors"))
			for code, n := range statusCounts(r) {
				if code != "200" && code != "503" {
					bad += n
				}
			}
		}
		for _, q := range by {
			if q.target.name == "catsdogs" {
				for _, r := range q.runs {
					rss = max(rss, num(r, "rss_peak_kb")/1024)
				}
			}
		}
		out = append(out, fmt.Sprintf("target c=32 no errors but deliberate 503s: %d others — %s", bad, verdict(bad == 0)))
		out = append(out, fmt.Sprintf("target RSS ≤ 300 MB (catsdogs, peak over every phase): %.0f MB — %s", rss, verdict(rss <= 300)))
	}
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func sub(m map[string]any, k string) map[string]any {
	v, _ := m[k].(map[string]any)
	return v
}

var benchLine = regexp.MustCompile(`^Benchmark(\w+?)(-\d+)?\s+\d+\s+([\d.]+) ns/op`)

// goBench runs the model benchmarks and returns the median ns/op of each.
// The preprocessing ones run twice: as built (libjpeg-turbo), and built with
// -tags purego (Go's decoders), which are reported with the suffix PureGo.
func goBench(int8Path string) (map[string]float64, error) {
	all := map[string][]float64{}
	var log bytes.Buffer
	type benchRun struct{ tags, benches, suffix, model, benchtime string }
	runs := []benchRun{
		{"", "PreprocessSmall|PreprocessLarge12MP|Inference|ClassifyEndToEnd", "", *flagModel, "40x"},
		{"purego", "PreprocessSmall|PreprocessLarge12MP", "PureGo", *flagModel, "40x"},
		// 40 images spread over every core is a tenth of a second: too short.
		{"", "ClassifyAllCores", "", *flagModel, "400x"},
	}
	if int8Path != "" { // the int8 copy's, as InferenceInt8 and ClassifyAllCoresInt8
		runs = append(runs, benchRun{"", "Inference", "Int8", int8Path, "40x"}, benchRun{"", "ClassifyAllCores", "Int8", int8Path, "400x"})
	}
	for _, run := range runs {
		cmd := exec.Command("go", "test", "-tags", run.tags, "./model/", "-run", "^$", "-bench", "^Benchmark("+run.benches+")$",
			"-benchtime", run.benchtime, "-count", strconv.Itoa(*flagCount))
		cmd.Env = append(os.Environ(), "CATSDOGS_TEST_MODEL="+mustAbs(run.model))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, os.Stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("go test -tags %q -bench: %v\n%s", run.tags, err, out.String())
		}
		log.Write(out.Bytes())
		sc := bufio.NewScanner(&out)
		for sc.Scan() {
			if m := benchLine.FindStringSubmatch(sc.Text()); m != nil {
				v, _ := strconv.ParseFloat(m[3], 64)
				all[m[1]+run.suffix] = append(all[m[1]+run.suffix], v)
			}
		}
	}
	_ = os.WriteFile(filepath.Join(*flagOut, "gobench.txt"), log.Bytes(), 0o644)
	med := map[string]float64{}
	for k, v := range all {
		sort.Float64s(v)
		med[k] = v[len(v)/2]
	}
	for _, need := range []string{"PreprocessSmall", "Inference"} {
		if _, ok := med[need]; !ok {
			return nil, fmt.Errorf("benchmark %s missing from output:\n%s", need, log.String())
		}
	}
	return med, nil
}

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		panic(err)
	}
	return a
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

// makePhotos writes n real test photos resized to w×h (JPEG q90) into dir,
// unless dir already holds n of them: the dataset's own files are small (160
// px shorter side), users send bigger. Upscaled photos are smooth and would
// compress (and decode) far more easily than a camera's, so fine grain is
// added: a 12 MP one then weighs ~2.1 MB, near a phone photo.
func makePhotos(dir string, w, h, n int) (int, error) {
	if old, _ := filepath.Glob(filepath.Join(dir, "*.jpg")); len(old) == n {
		return n, nil
	}
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
	grain := w*h > 2_000_000
	seed := uint32(1)
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
		if grain {
			for k := 0; k < len(dst.Pix); k++ {
				if k%4 == 3 {
					continue
				}
				seed = seed*1664525 + 1013904223 // LCG: deterministic, fast
				v := int(dst.Pix[k]) + int(seed>>28) - 8
				dst.Pix[k] = uint8(min(255, max(0, v)))
			}
		}
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
