// Command lbtest runs replicas of the real binary behind a real HAProxy on
// loopback and checks what an operator running several of them relies on
// (issue 23), under steady load: closed-loop clients uploading the fixture
// photos with a token from the test issuer (tests/issuer; auth is on).
//
//   - A rolling restart: SIGTERM one replica, wait until HAProxy has taken it
//     out (its /ready turned 503) and it has drained and exited, start it
//     again, wait until HAProxy has it UP and sends it requests, then the
//     next. Every request must be answered 200 with a prediction.
//   - A SIGKILL of one replica: the failed requests must have started before
//     the kill and be at most those in flight on it (HAProxy's scur just
//     before, plus the sessions it was given between that reading and the
//     kill) and at most the number of clients.
//
// With -capacity it measures throughput instead, behind the same HAProxy:
// one replica pinned to core 0, then two pinned to cores 0 and 1, and checks
// the capacity model's prediction for two from the CPU per request measured
// with one (capacity.go; docs/OPERATING.md, "Capacity").
//
// Waits are for events (HAProxy's state, a process's exit, answers counted),
// each bounded generously: a loaded machine makes it slow, not fail. Logs of
// every replica and of HAProxy, and the HAProxy configuration, go to -out.
//
//	go run ./tools/lbtest              (make lb-test)
//	go run ./tools/lbtest -capacity    (make lb-capacity)
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"catsdogs/tests/issuer"
	"catsdogs/tools/internal/loadkit"
)

var (
	flagBin      = flag.String("bin", "bin/catsdogs", "service binary")
	flagHAProxy  = flag.String("haproxy", "", "HAProxy binary (default: haproxy on PATH or in the system's sbin folders)")
	flagImages   = flag.String("images", "tests/testdata/images", "folder of photos to upload (searched recursively for .jpg)")
	flagOut      = flag.String("out", "build/lb-test", "where the logs and the HAProxy configuration go")
	flagReplicas = flag.Int("replicas", 3, "replicas for the restart and kill checks")
	flagClients  = flag.Int("clients", 6, "closed-loop clients for the restart and kill checks")
	flagDrain    = flag.Duration("drain", 5*time.Second, "the replicas' SHUTDOWN_DRAIN_DELAY (5s is the service's default)")
	flagInter    = flag.Duration("inter", time.Second, "HAProxy's check interval on /ready (inter)")
	flagFall     = flag.Int("fall", 2, "failed checks before HAProxy takes a replica out (fall)")
	flagRise     = flag.Int("rise", 2, "passed checks before HAProxy sends a replica requests again (rise)")
	flagRetryOn  = flag.String("retry-on", "conn-failure empty-response", "HAProxy's retry-on (\"conn-failure\" alone shows what the kill costs unretried)")

	flagCapacity  = flag.Bool("capacity", false, "measure 1 and 2 pinned replicas and check the capacity model instead")
	flagRounds    = flag.Int("rounds", 3, "-capacity: rounds of (1 replica, 2 replicas); medians are reported")
	flagDuration  = flag.Duration("d", 20*time.Second, "-capacity: measured time of each run")
	flagCapCli    = flag.Int("capacity-clients", 12, "-capacity: closed-loop clients (enough to saturate two replicas)")
	flagTolerance = flag.Float64("tolerance", 0.20, "-capacity: allowed |measured / predicted - 1|")
)

// bound turns a hang into a failure; no wait here asserts a speed.
const bound = 2 * time.Minute

func main() {
	flag.Parse()
	var err error
	if *flagCapacity {
		err = capacity()
	} else {
		err = restartAndKill()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lbtest: FAIL:", err)
		os.Exit(1)
	}
}

// until polls cond every 10 ms until it holds or fails, or bound passes.
func until(what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(bound)
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %s", what, bound)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ---- replicas and the balancer ---------------------------------------------

// replica is one catsdogs process, HAProxy's server name, on a port kept
// across restarts.
type replica struct {
	name   string // r1, r2, ...: HAProxy's server name
	cpu    int    // the core it is pinned to; -1: not pinned
	port   string // "" until the first start picks one
	svc    *loadkit.Service
	starts int
}

// cluster is the replicas behind HAProxy, with the issuer they trust and
// the photos clients send.
type cluster struct {
	replicas []*replica
	env      []string // every replica's environment
	lb       *loadkit.Service
	sock     string // HAProxy's stats socket
	iss      *issuer.Issuer
	token    string
	photos   []loadkit.Photo
	tmp      string
}

// newCluster starts the issuer, the replicas (pinned to cpus[i] when cpus is
// given) and HAProxy in front of them, and waits until HAProxy has checked
// every replica UP.
func newCluster(n int, cpus []int) (*cluster, error) {
	photos, err := loadkit.Photos(*flagImages)
	if err != nil {
		return nil, fmt.Errorf("-images: %w", err)
	}
	if err := os.MkdirAll(*flagOut, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "lbtest")
	if err != nil {
		return nil, err
	}
	c := &cluster{tmp: tmp, sock: filepath.Join(tmp, "haproxy.sock"), photos: photos}
	if c.iss, err = issuer.Start(); err != nil {
		c.close()
		return nil, err
	}
	c.token = c.iss.Token(nil)
	c.env = []string{"OAUTH2_ISSUER=" + c.iss.URL, "OAUTH2_AUDIENCE=" + issuer.DefaultAudience,
		"AUTH_DISABLED=false", "LISTEN_ADDR=127.0.0.1", "SHUTDOWN_DRAIN_DELAY=" + flagDrain.String()}
	for i := range n {
		r := &replica{name: fmt.Sprintf("r%d", i+1), cpu: -1}
		if cpus != nil {
			r.cpu = cpus[i]
		}
		c.replicas = append(c.replicas, r)
		if err := c.start(r); err != nil {
			c.close()
			return nil, err
		}
	}
	if err := c.startHAProxy(); err != nil {
		c.close()
		return nil, err
	}
	for _, r := range c.replicas {
		if err := c.waitStatus(r, "UP"); err != nil {
			c.close()
			return nil, err
		}
	}
	return c, nil
}

// start runs r (again, on its port) and waits for its own /ready.
func (c *cluster) start(r *replica) error {
	r.starts++
	cmd, env := loadkit.Cmd{Path: *flagBin, Port: r.port}, c.env
	if r.cpu >= 0 {
		// One core: GOMAXPROCS, and with it the inference workers, ONNX
		// Runtime's threads and admission, follow it.
		cmd = loadkit.Cmd{Path: "taskset", Args: []string{"-c", fmt.Sprint(r.cpu), *flagBin}, Port: r.port}
		env = append(slices.Clip(env), "GOMAXPROCS=1")
	}
	svc, err := loadkit.StartCmd(cmd, env, filepath.Join(*flagOut, fmt.Sprintf("%s.%d.log", r.name, r.starts)), bound)
	if err != nil {
		return fmt.Errorf("%s: %w", r.name, err)
	}
	r.svc = svc
	_, r.port, _ = strings.Cut(svc.Addr, ":")
	return nil
}

func (c *cluster) close() {
	if c.lb != nil {
		c.lb.Stop()
	}
	for _, r := range c.replicas {
		if r.svc != nil {
			r.svc.Stop()
		}
	}
	if c.iss != nil {
		c.iss.Close()
	}
	os.RemoveAll(c.tmp)
}

// haproxyPath finds HAProxy: -haproxy, else on PATH, else where distributions
// install it (sbin, which is not on a normal user's PATH).
func haproxyPath() (string, error) {
	if *flagHAProxy != "" {
		return *flagHAProxy, nil
	}
	if p, err := exec.LookPath("haproxy"); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/local/sbin", "/usr/sbin", "/sbin"} {
		if p := filepath.Join(dir, "haproxy"); isExecutable(p) {
			return p, nil
		}
	}
	return "", errors.New("haproxy not found (install it, e.g. apt-get install haproxy, or pass -haproxy)")
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// ---- load ---------------------------------------------------------------------

// record is one request: when it was sent and answered, and why it failed
// ("" for a 200 with a valid prediction).
type record struct {
	start, end time.Time
	fail       string
}

// load is closed-loop clients, each on its own keep-alive connection,
// uploading the photos in turn until stopped.
type load struct {
	stop atomic.Bool
	ok   atomic.Int64 // valid answers so far
	wg   sync.WaitGroup
	mu   sync.Mutex
	recs []record
}

// startLoad starts clients uploading the photos through HAProxy.
func (c *cluster) startLoad(clients int) *load {
	l := &load{}
	for i := range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			client := &http.Client{Timeout: bound, Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}
			defer client.CloseIdleConnections()
			for n := i; !l.stop.Load(); n += clients {
				rec := send(client, c.lb.Base+"/upload", c.token, c.photos[n%len(c.photos)])
				if rec.fail == "" {
					l.ok.Add(1)
				}
				l.mu.Lock()
				l.recs = append(l.recs, rec)
				l.mu.Unlock()
			}
		}()
	}
	return l
}

// finish stops the clients after their current request and returns every
// request's record.
func (l *load) finish() []record {
	l.stop.Store(true)
	l.wg.Wait()
	return l.recs
}

// answeredBetween counts the requests answered in [from, to].
func (l *load) answeredBetween(from, to time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.recs {
		if !r.end.Before(from) && !r.end.After(to) {
			n++
		}
	}
	return n
}

// send uploads one photo; POST is not retried by Go's client, so what fails
// here is what HAProxy let through.
func send(client *http.Client, url, token string, p loadkit.Photo) record {
	rec := record{start: time.Now()}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(p.Form))
	if err != nil {
		rec.fail, rec.end = err.Error(), time.Now()
		return rec
	}
	req.Header.Set("Content-Type", p.FormType)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		rec.fail, rec.end = "no answer: "+err.Error(), time.Now()
		return rec
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	rec.end = time.Now()
	var ans struct {
		Prediction string    `json:"prediction"`
		Labels     []string  `json:"labels"`
		Values     []float64 `json:"values"`
	}
	switch {
	case err != nil:
		rec.fail = fmt.Sprintf("%d, reading the answer: %v", resp.StatusCode, err)
	case resp.StatusCode != http.StatusOK:
		rec.fail = fmt.Sprintf("%d %s", resp.StatusCode, oneLine(b))
	case json.Unmarshal(b, &ans) != nil || !slices.Contains(ans.Labels, ans.Prediction) || len(ans.Values) != len(ans.Labels):
		rec.fail = "200 without a valid prediction: " + oneLine(b)
	}
	return rec
}

// oneLine is an answer's body for a message: on one line, at most 200 bytes.
func oneLine(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// tally is the requests of one phase.
type tally struct {
	requests, ok int
	failed       []record
}

// phase counts the records in it.
func phase(recs []record, in func(record) bool) tally {
	var t tally
	for _, r := range recs {
		if !in(r) {
			continue
		}
		t.requests++
		if r.fail == "" {
			t.ok++
		} else {
			t.failed = append(t.failed, r)
		}
	}
	return t
}

func (t tally) String() string {
	return fmt.Sprintf("requests %d, 200 with a prediction %d, failed %d", t.requests, t.ok, len(t.failed))
}

// signal sends sig to r's process.
func signal(r *replica, sig syscall.Signal) error {
	return r.svc.Cmd.Process.Signal(sig)
}
