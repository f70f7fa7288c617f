package main

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"
)

// restartAndKill runs the rolling restart, then the kill, under one steady
// load, and fails when either loses more than its bound.
func restartAndKill() error {
	// HAProxy takes a replica out within fall x inter of its /ready turning
	// 503; the replica must still listen until then.
	if detect := time.Duration(*flagFall) * *flagInter; *flagDrain <= detect {
		return fmt.Errorf("-drain %s must exceed fall x inter = %s", *flagDrain, detect)
	}
	if *flagReplicas < 2 {
		return errors.New("-replicas: at least 2, so that one serves while another restarts")
	}
	c, err := newCluster(*flagReplicas, nil)
	if err != nil {
		return err
	}
	defer c.close()
	fmt.Printf("lb-test: %d replicas of %s behind HAProxy (checks of /ready every %s, fall %d, rise %d; SHUTDOWN_DRAIN_DELAY %s), %d clients uploading %d photos\n",
		len(c.replicas), *flagBin, *flagInter, *flagFall, *flagRise, *flagDrain, *flagClients, len(c.photos))

	l := c.startLoad(*flagClients)
	tl, err := scenario(c, l)
	recs := l.finish()
	if err != nil {
		return err
	}

	var failures []string
	// A request in flight at the kill belongs to the kill, whenever it was sent.
	warm := phase(recs, func(r record) bool { return r.start.Before(tl.roll) })
	roll := phase(recs, func(r record) bool { return !r.start.Before(tl.roll) && r.end.Before(tl.kill) })
	kill := phase(recs, func(r record) bool { return !r.start.Before(tl.roll) && !r.end.Before(tl.kill) })
	fmt.Printf("%-17s %s\n", "warm-up:", warm)
	fmt.Printf("%-17s %s; %s\n", "rolling restart:", roll, resent(tl.lbRoll, tl.lbKill))
	fmt.Printf("%-17s %s; %s; in flight on %s at the kill: %d (HAProxy's scur), at most %d with those given to it between that reading and the kill\n",
		"kill of "+tl.victim+":", kill, resent(tl.lbKill, tl.lbEnd), tl.victim, tl.scur, tl.bound)
	for _, f := range append(warm.failed, roll.failed...) {
		failures = append(failures, "lost during warm-up or the rolling restart: "+describe(f, tl.start))
	}
	for _, f := range kill.failed {
		fmt.Println("  failed at the kill:", describe(f, tl.start))
		if !f.start.Before(tl.kill) {
			failures = append(failures, "sent after the kill, yet failed: "+describe(f, tl.start))
		}
	}
	if n := len(kill.failed); n > tl.bound || n > *flagClients {
		failures = append(failures, fmt.Sprintf("the kill cost %d requests, more than the %d in flight on the replica (or the %d clients)",
			n, tl.bound, *flagClients))
	}
	if len(failures) > 0 {
		return errors.New(strings.Join(failures, "; "))
	}
	fmt.Println("PASS: the rolling restart lost no request; the kill cost at most the requests in flight on the replica")
	return nil
}

// timeline is when the phases began, and what HAProxy said at the kill.
type timeline struct {
	start, roll time.Time
	kill        time.Time // SIGKILL
	victim      string
	scur        int // requests on the victim just before the kill
	bound       int // scur + requests given to it between that reading and the kill
	// The backend's totals at the rolling restart's start, before the kill
	// and at the end.
	lbRoll, lbKill, lbEnd serverStat
}

// resent is HAProxy's retry counters between two readings.
func resent(from, to serverStat) string {
	return fmt.Sprintf("HAProxy retries %d, redispatches %d", to.retries-from.retries, to.redispatch-from.redispatch)
}

// scenario restarts every replica in turn, then kills one and restarts it,
// while l runs.
func scenario(c *cluster, l *load) (timeline, error) {
	var tl timeline
	var err error
	tl.start = time.Now()
	// Warm-up: every replica has answered through HAProxy, a request per
	// client at least.
	for _, r := range c.replicas {
		if err := c.waitTraffic(r, serverStat{stot: *flagClients}); err != nil {
			return tl, err
		}
	}
	tl.roll = time.Now()
	if tl.lbRoll, err = c.stat(nil); err != nil {
		return tl, err
	}
	for _, r := range c.replicas {
		if err := rollOne(c, l, r); err != nil {
			return tl, err
		}
	}

	// The kill: a replica with requests on it, as HAProxy sees them.
	r := c.replicas[len(c.replicas)/2]
	tl.victim = r.name
	if tl.lbKill, err = c.stat(nil); err != nil {
		return tl, err
	}
	var before serverStat
	if err := until(r.name+" to have a request in flight", func() (bool, error) {
		s, err := c.stat(r)
		before = s
		return err == nil && s.scur > 0, err
	}); err != nil {
		return tl, err
	}
	tl.kill = time.Now()
	if err := signal(r, syscall.SIGKILL); err != nil {
		return tl, err
	}
	after, err := c.stat(r)
	if err != nil {
		return tl, err
	}
	tl.scur, tl.bound = before.scur, before.scur+after.stot-before.stot
	<-r.svc.Done
	if err := c.waitStatus(r, "DOWN"); err != nil {
		return tl, err
	}
	fmt.Printf("  %s: SIGKILL (requests on it: %d); out of HAProxy after %.1f s\n", r.name, tl.scur, time.Since(tl.kill).Seconds())
	if err := restartIn(c, r); err != nil {
		return tl, err
	}
	tl.lbEnd, err = c.stat(nil)
	return tl, err
}

// restartIn starts r again and waits until HAProxy has checked it UP and
// sent it a request.
func restartIn(c *cluster, r *replica) error {
	if err := c.start(r); err != nil {
		return err
	}
	if err := c.waitStatus(r, "UP"); err != nil {
		return err
	}
	s, err := c.stat(r)
	if err != nil {
		return err
	}
	return c.waitTraffic(r, s)
}

// rollOne restarts r as a rolling update does: SIGTERM, HAProxy takes it out
// while it still serves, it drains and exits 0, it starts again, HAProxy
// checks it UP and sends it requests.
func rollOne(c *cluster, l *load, r *replica) error {
	t := time.Now()
	if err := signal(r, syscall.SIGTERM); err != nil {
		return err
	}
	// HAProxy must take it out before it stops listening (the drain delay).
	err := until("HAProxy to take "+r.name+" out after SIGTERM", func() (bool, error) {
		select {
		case <-r.svc.Done:
			return false, fmt.Errorf("%s exited before HAProxy took it out: SHUTDOWN_DRAIN_DELAY must exceed fall x inter", r.name)
		default:
		}
		s, err := c.stat(r)
		return err == nil && s.status == "DOWN", err
	})
	if err != nil {
		return err
	}
	out := time.Since(t)
	if err := until(r.name+" to drain and exit", func() (bool, error) {
		select {
		case <-r.svc.Done:
			return true, nil
		default:
			return false, nil
		}
	}); err != nil {
		return err
	}
	if r.svc.Err != nil {
		return fmt.Errorf("%s after SIGTERM: %v, want exit status 0", r.name, r.svc.Err)
	}
	exited := time.Since(t)
	if err := restartIn(c, r); err != nil {
		return err
	}
	back := time.Now()
	served := l.answeredBetween(t, back)
	fmt.Printf("  %s: SIGTERM; out of HAProxy after %.1f s, exited after %.1f s, serving again after %.1f s; %d requests answered meanwhile\n",
		r.name, out.Seconds(), exited.Seconds(), back.Sub(t).Seconds(), served)
	if served == 0 {
		return fmt.Errorf("no request was answered while %s restarted: the load stalled", r.name)
	}
	return nil
}

// describe is a failed record, with times from t0.
func describe(r record, t0 time.Time) string {
	return fmt.Sprintf("sent at %.3f s, ended at %.3f s: %s", r.start.Sub(t0).Seconds(), r.end.Sub(t0).Seconds(), r.fail)
}
