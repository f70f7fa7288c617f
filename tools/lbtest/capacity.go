package main

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"catsdogs/tools/internal/loadkit"
)

// The capacity check (-capacity). Two replicas are started, pinned to cores
// 0 and 1 with GOMAXPROCS=1, behind one HAProxy; a one-replica run puts r2
// in maintenance through HAProxy's admin socket. HAProxy and the clients
// (this process) are not pinned: they share the machine with the replicas,
// so the model counts their CPU too. Each round measures one replica, then
// two, for -d each after a warm-up; the model predicts the two-replica
// throughput from the one-replica run's CPU per request:
//
//	predicted = min(A / (c_replica + c_lb), 2 / c_replica)
//
// c_replica is the replicas' CPU-seconds per answered request, c_lb
// HAProxy's and the clients' (the requests cost the machine that much in
// all); A is the cores left to all of them during the two-replica run: the
// machine's 2 less what other processes used meanwhile (the machine is
// shared). 2 / c_replica is the replicas' own limit, one core each.

// cpuReading is the CPU time used so far, in seconds.
type cpuReading struct {
	at       time.Time
	ok       int64     // valid answers so far
	replicas []float64 // each replica's
	lb, self float64   // HAProxy's, and this process's (the clients)
	busy     float64   // the whole machine's, every process and core
}

// capRun is one measured run.
type capRun struct {
	rps                     float64   // valid answers per second
	cReplica, cHAProxy, cCl float64   // CPU-seconds per answer: the replicas', HAProxy's, the clients'
	busy                    []float64 // cores each replica used
	others                  float64   // cores other processes (and the kernel, uncharged) used
}

// cLB is what a request costs besides the replica: HAProxy and the client.
func (r capRun) cLB() float64 { return r.cHAProxy + r.cCl }

const cores = 2 // the machine the check is for: two replicas, one core each

func capacity() error {
	if *flagRounds < 1 {
		return errors.New("-rounds: at least 1")
	}
	if n := runtime.NumCPU(); n < cores {
		return fmt.Errorf("-capacity pins two replicas to cores 0 and 1: this process may use %d CPUs", n)
	}
	c, err := newCluster(cores, []int{0, 1})
	if err != nil {
		return err
	}
	defer c.close()
	fmt.Printf("lb-capacity: replicas of %s pinned to one core each (GOMAXPROCS=1) behind HAProxy, %d clients, %d rounds of %s per run\n",
		*flagBin, *flagCapCli, *flagRounds, *flagDuration)

	var predicted, measured, ratios, cOne []float64
	for round := 1; round <= *flagRounds; round++ {
		one, err := measure(c, 1)
		if err != nil {
			return err
		}
		two, err := measure(c, 2)
		if err != nil {
			return err
		}
		avail := cores - two.others
		pIdle := predict(one, cores)
		p := predict(one, avail)
		fmt.Printf("round %d\n  1 replica:  %6.1f req/s; CPU per request: replica %.2f ms, HAProxy %.2f ms, clients %.2f ms; replica busy %.2f cores, others %.2f\n",
			round, one.rps, 1e3*one.cReplica, 1e3*one.cHAProxy, 1e3*one.cCl, one.busy[0], one.others)
		fmt.Printf("  2 replicas: %6.1f req/s; CPU per request: replicas %.2f ms, HAProxy %.2f ms, clients %.2f ms; replicas busy %.2f + %.2f cores, others %.2f\n",
			two.rps, 1e3*two.cReplica, 1e3*two.cHAProxy, 1e3*two.cCl, two.busy[0], two.busy[1], two.others)
		fmt.Printf("  predicted for 2: %.1f req/s on the %.2f cores left (%.1f on an idle machine); measured / predicted %.3f\n",
			p, avail, pIdle, two.rps/p)
		predicted, measured = append(predicted, p), append(measured, two.rps)
		ratios, cOne = append(ratios, two.rps/p), append(cOne, one.cReplica)
	}
	ratio := median(ratios)
	fmt.Printf("medians of %d rounds: predicted %.1f req/s, measured %.1f req/s, measured / predicted %.3f (allowed 1 ± %.2f); "+
		"a replica's CPU per request %.2f ms\n", len(ratios), median(predicted), median(measured), ratio, *flagTolerance, 1e3*median(cOne))
	if math.Abs(ratio-1) > *flagTolerance {
		return fmt.Errorf("the capacity model is off by %+.0f %% (allowed ±%.0f %%)", 100*(ratio-1), 100**flagTolerance)
	}
	fmt.Println("PASS: the capacity model's prediction for 2 replicas holds")
	return nil
}

// predict is the model's throughput for two replicas from a one-replica run,
// with avail cores for the replicas, HAProxy and the clients together.
func predict(one capRun, avail float64) float64 {
	return min(avail/(one.cReplica+one.cLB()), cores/one.cReplica)
}

// measure runs the clients against n replicas (r1, or r1 and r2) for -d
// after a warm-up and returns what they got and what it cost.
func measure(c *cluster, n int) (capRun, error) {
	r2 := c.replicas[1]
	cmd, state := "enable", "UP"
	if n == 1 {
		cmd, state = "disable", "MAINT"
	}
	if out, err := c.admin(fmt.Sprintf("%s server %s/%s", cmd, backend, r2.name)); err != nil || strings.TrimSpace(out) != "" {
		return capRun{}, fmt.Errorf("%s server %s: %v %s", cmd, r2.name, err, out)
	}
	if err := c.waitStatus(r2, state); err != nil {
		return capRun{}, err
	}
	l := c.startLoad(*flagCapCli)
	// Warm-up: ten answers per client, so every connection is open and
	// every replica's queue full.
	err := until("the warm-up's answers", func() (bool, error) { return l.ok.Load() >= int64(10**flagCapCli), nil })
	var a, b cpuReading
	var s2 serverStat
	if err == nil {
		if s2, err = c.stat(r2); err == nil {
			a, err = c.readCPU(l)
		}
	}
	if err == nil {
		time.Sleep(*flagDuration) // the measured time, not a wait for an event
		b, err = c.readCPU(l)
	}
	recs := l.finish()
	if err != nil {
		return capRun{}, err
	}
	if t := phase(recs, func(record) bool { return true }); len(t.failed) > 0 {
		return capRun{}, fmt.Errorf("%d replica(s): %d of %d requests failed, e.g. %s", n, len(t.failed), t.requests, t.failed[0].fail)
	}
	after, err := c.stat(r2)
	if err != nil {
		return capRun{}, err
	}
	if (n == 1) != (after.stot == s2.stot) {
		return capRun{}, fmt.Errorf("%d replica(s): HAProxy gave %s %d requests", n, r2.name, after.stot-s2.stot)
	}

	secs, ok := b.at.Sub(a.at).Seconds(), float64(b.ok-a.ok)
	if ok == 0 {
		return capRun{}, fmt.Errorf("%d replica(s): no answer in %s", n, *flagDuration)
	}
	run := capRun{rps: ok / secs, cHAProxy: (b.lb - a.lb) / ok, cCl: (b.self - a.self) / ok}
	ours := b.lb - a.lb + b.self - a.self
	for i := range b.replicas {
		d := b.replicas[i] - a.replicas[i]
		run.cReplica += d / ok
		run.busy = append(run.busy, d/secs)
		ours += d
	}
	run.others = max(0, (b.busy-a.busy-ours)/secs)
	return run, nil
}

// readCPU reads every process's CPU time and the machine's.
func (c *cluster) readCPU(l *load) (cpuReading, error) {
	r := cpuReading{at: time.Now(), ok: l.ok.Load()}
	var err error
	for _, rep := range c.replicas {
		v, e := loadkit.ProcCPU(rep.svc.Cmd.Process.Pid)
		r.replicas, err = append(r.replicas, v), errors.Join(err, e)
	}
	var e1, e2, e3 error
	r.lb, e1 = loadkit.ProcCPU(c.lb.Cmd.Process.Pid)
	r.self, e2 = loadkit.ProcCPU(os.Getpid())
	r.busy, e3 = machineBusy()
	return r, errors.Join(err, e1, e2, e3)
}

// machineBusy is the CPU time all cores spent not idle, from /proc/stat.
func machineBusy() (float64, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan()
	fields := strings.Fields(sc.Text())
	if len(fields) < 8 || fields[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", sc.Text())
	}
	// user nice system idle iowait irq softirq steal: all but idle and iowait.
	var busy float64
	for i, v := range fields[1:9] {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, err
		}
		if i != 3 && i != 4 {
			busy += n
		}
	}
	return busy / loadkit.ClockTick, nil
}

func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
