package model

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"catsdogs/model/onnx"
)

// batcher is dynamic batching in front of ONNX Runtime: images prepared
// concurrently (by /upload requests, or the parts of one /predict request)
// wait in one queue, and each of the session's runners takes up to maxBatch
// of them into a single Run. One Run over n images costs less than n Runs of
// one (fewer calls, better use of the CPU's vector units and caches).
//
// A runner dispatches when the batch is full, when maxDelay has passed since
// its first image was queued, or at once when no other image is queued or
// being prepared, since then nothing could join soon: a lone request never
// waits for the delay, which is why batching costs nothing at low load.
type batcher struct {
	sess     *onnx.Session
	maxBatch int
	maxDelay time.Duration
	queue    chan *job
	// pending counts images admitted and not yet taken by a runner: being
	// prepared (or waiting for a CPU slot to be), or queued. Callers add
	// one before preparing (and take it back if that fails); runners take
	// one off per image they dequeue, so pending > 0 after the queue is
	// drained means an image is on its way.
	pending atomic.Int64
	// wake tells the collecting runner that pending dropped to 0 without an
	// image arriving (its preparation failed): stop waiting for it.
	wake chan struct{}
	// collecting is held by the one runner gathering a batch. Without it,
	// idle runners (blocked on the queue longer) would take the very images
	// the collector is waiting for, and batches would never form.
	collecting sync.Mutex
	quit       chan struct{}
	stopOnce   sync.Once
	closed     sync.RWMutex // submit holds it for reading while it queues
	stopped    bool
	done       sync.WaitGroup
}

// errStopped answers images submitted while the classifier closes.
var errStopped = errors.New("the classifier is shutting down")

// job is one image on its way through the batcher.
type job struct {
	in     []float32 // the image's input tensor (Session.ImageSize values)
	queued time.Time
	// Set by the runner before done is closed.
	scores []float32
	err    error
	batch  int     // images in the Run this one shared
	waitMS float64 // from queued to the Run's start
	runMS  float64
	done   chan struct{}
}

func newBatcher(sess *onnx.Session, runners int, maxDelay time.Duration) *batcher {
	b := &batcher{
		sess: sess, maxBatch: sess.MaxBatch(), maxDelay: maxDelay,
		// Admission bounds what is in flight; the buffer only saves a
		// goroutine switch per image.
		queue: make(chan *job, 256),
		quit:  make(chan struct{}),
		wake:  make(chan struct{}, 1),
	}
	for i := 0; i < runners; i++ {
		b.done.Add(1)
		go b.loop()
	}
	return b
}

// submit queues one prepared image, which the caller announced with expect,
// and waits for its scores. It does not watch the caller's context: once
// queued, the image is at most one Run away, and in must stay untouched
// until the Run has copied it.
func (b *batcher) submit(in []float32) *job {
	j := &job{in: in, queued: time.Now(), done: make(chan struct{})}
	b.closed.RLock()
	if b.stopped {
		b.closed.RUnlock()
		b.abandon()
		j.err = errStopped
		return j
	}
	b.queue <- j
	b.closed.RUnlock()
	<-j.done
	return j
}

// expect counts an image that is on its way (being prepared): while one is,
// a collecting runner waits for it. Exactly one of submit or abandon follows.
func (b *batcher) expect() { b.pending.Add(1) }

// abandon takes back an image counted by expect that will never be queued.
func (b *batcher) abandon() {
	if b.pending.Add(-1) == 0 {
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
}

func (b *batcher) loop() {
	defer b.done.Done()
	batch := make([]*job, 0, b.maxBatch)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		b.collecting.Lock()
		select {
		case j := <-b.queue:
			b.pending.Add(-1)
			batch = b.collect(append(batch[:0], j), timer)
			b.collecting.Unlock()
			b.run(batch)
		case <-b.quit:
			b.collecting.Unlock()
			return
		}
	}
}

// collect adds queued images to batch until it is full, the first image has
// waited maxDelay, or no more are on their way.
func (b *batcher) collect(batch []*job, timer *time.Timer) []*job {
	deadline := batch[0].queued.Add(b.maxDelay)
	for len(batch) < b.maxBatch {
		select {
		case j := <-b.queue:
			b.pending.Add(-1)
			batch = append(batch, j)
			continue
		default:
		}
		wait := time.Until(deadline)
		if wait <= 0 || b.pending.Load() <= 0 {
			return batch
		}
		timer.Reset(wait)
		select {
		case j := <-b.queue:
			timer.Stop()
			b.pending.Add(-1)
			batch = append(batch, j)
		case <-b.wake: // look again: maybe nothing is on its way any more
			timer.Stop()
		case <-timer.C:
			return batch
		}
	}
	return batch
}

func (b *batcher) run(batch []*job) {
	n, per, classes := len(batch), b.sess.ImageSize(), b.sess.Classes()
	start := time.Now()
	err := b.sess.Run(n, func(in []float32) {
		for i, j := range batch {
			copy(in[i*per:(i+1)*per], j.in)
		}
	}, func(out []float32) {
		for i, j := range batch {
			j.scores = append([]float32(nil), out[i*classes:(i+1)*classes]...)
		}
	})
	ms := MillisSince(start)
	for _, j := range batch {
		j.err, j.batch, j.runMS = err, n, ms
		j.waitMS = float64(start.Sub(j.queued).Microseconds()) / 1000
		close(j.done)
	}
}

// stop ends the runners once; images still queued, and any submitted
// later, fail with errStopped.
func (b *batcher) stop() {
	b.stopOnce.Do(func() {
		b.closed.Lock()
		b.stopped = true
		b.closed.Unlock()
		close(b.quit)
		b.done.Wait()
		for {
			select {
			case j := <-b.queue:
				j.err = errStopped
				close(j.done)
			default:
				return
			}
		}
	})
}
