package transactions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/pubsub"
)

// watcher pushes export status changes to the clients watching an export
// (gRPC WatchExport, GET /api/Export/Events), event-driven: it receives the
// exporters' export.progress, export.completed and export.failed events in
// a consumer group of this instance's own and fans each out, in memory, to
// the watches of its RID.
//
// Why a group per instance: every instance must see every status event,
// since a client watching an export may be connected to any of them, and
// the members of one group would share (split) the events. So each instance
// subscribes in "transactions.watch.<Instance>", created when it starts and
// deleted (pubsub.GroupDeleter) when it stops; within the instance, one
// subscription feeds any number of watches. An instance that crashes leaves
// its group behind (a restart with the same Deps.Instance takes it over;
// "switchyard groups delete" removes it).
type watcher struct {
	sub    pubsub.Subscriber
	group  string
	topics []string
	log    *slog.Logger
	done   <-chan struct{} // closed when the service stops: watches end

	subscribed chan struct{} // closed when the subscribing loop ended
	stopLoop   func()        // ends the subscribing loop

	mu      sync.Mutex
	watches map[string]map[*watch]struct{} // by RID
	subs    []*pubsub.Subscription
}

// startWatcher starts the watcher of the instance's group on the status
// topics. It subscribes in the background, trying again with backoff until
// every subscription works, so that the service starts while the broker is
// still unreachable (its watches then see events once it is there).
func startWatcher(ctx context.Context, sub pubsub.Subscriber, ns events.Namespace, instance string, log *slog.Logger) *watcher {
	w := &watcher{sub: sub, group: "transactions.watch." + instance, log: log, done: ctx.Done(),
		watches: map[string]map[*watch]struct{}{}, subscribed: make(chan struct{})}
	lctx, stop := context.WithCancel(ctx)
	w.stopLoop = stop
	go func() {
		defer close(w.subscribed)
		pause := 200 * time.Millisecond
		for {
			err := w.subscribe(ctx, ns)
			if err == nil {
				return
			}
			w.log.Warn("cannot watch export status yet; trying again", "group", w.group, "retry_in", pause, "err", err)
			select {
			case <-time.After(pause):
				pause = min(2*pause, 10*time.Second)
			case <-lctx.Done():
				return
			}
		}
	}()
	return w
}

// subscribe subscribes the instance's group to the status topics, or
// closes what it made and returns the error.
func (w *watcher) subscribe(ctx context.Context, ns events.Namespace) error {
	// The subscriptions outlive ctx: close stops them, then deletes the group.
	sctx := context.WithoutCancel(ctx)
	opts := []pubsub.SubscribeOption{pubsub.WithLogger(w.log), pubsub.WithMaxAttempts(1)}
	progress := ns.ExportProgress()
	s, err := progress.Subscribe(sctx, w.sub, w.group, func(_ context.Context, p events.ExportProgress, _ *pubsub.Message) error {
		w.publish(liveStatus{ExportStatus: events.ExportStatus{RID: p.RID, Status: p.Status, Progress: p.Rows}})
		return nil
	}, opts...)
	if err != nil {
		return fmt.Errorf("watch %s: %w", progress.Name(), err)
	}
	made := []*pubsub.Subscription{s}
	names := []string{progress.Name()}
	for _, topic := range []pubsub.Topic[events.ExportFinished]{ns.ExportCompleted(), ns.ExportFailed()} {
		s, err := topic.Subscribe(sctx, w.sub, w.group, func(_ context.Context, f events.ExportFinished, _ *pubsub.Message) error {
			w.publish(liveStatus{ExportStatus: events.ExportStatus{RID: f.RID, Status: f.Status, Progress: f.Rows, URL: f.URL, Error: f.Error}})
			return nil
		}, opts...)
		if err != nil {
			for _, m := range made {
				_ = m.Close()
			}
			return fmt.Errorf("watch %s: %w", topic.Name(), err)
		}
		made = append(made, s)
		names = append(names, topic.Name())
	}
	for i := range made {
		w.add(made[i], names[i])
	}
	return nil
}

func (w *watcher) add(s *pubsub.Subscription, topic string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.subs = append(w.subs, s)
	w.topics = append(w.topics, topic)
}

// groupDeleteTimeout bounds the deletion of the instance's group at close.
const groupDeleteTimeout = 10 * time.Second

// close stops the subscriptions and deletes the instance's group on each
// topic.
func (w *watcher) close() error {
	w.stopLoop()
	<-w.subscribed
	w.mu.Lock()
	subs, topics := w.subs, w.topics
	w.subs, w.topics = nil, nil
	w.mu.Unlock()
	var errs []error
	for _, s := range subs {
		errs = append(errs, s.Close())
	}
	gd, ok := w.sub.(pubsub.GroupDeleter)
	if !ok {
		return errors.Join(errs...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), groupDeleteTimeout)
	defer cancel()
	for _, topic := range topics {
		// A group left behind is a leak to report, not a failed shutdown
		// (the broker may be closed already).
		if err := gd.DeleteGroup(ctx, topic, w.group); err != nil && !errors.Is(err, pubsub.ErrNotFound) {
			w.log.Warn("could not delete this instance's watch group; delete it with switchyard groups delete", "group", w.group, "topic", topic, "err", err)
		}
	}
	return errors.Join(errs...)
}

// publish hands st to the watches of its RID.
func (w *watcher) publish(st liveStatus) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for x := range w.watches[st.RID] {
		x.update(st)
	}
}

// watch registers a watch of rid; the caller must call its stop.
func (w *watcher) watch(rid string) *watch {
	x := &watch{changed: make(chan struct{}, 1)}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.watches[rid] == nil {
		w.watches[rid] = map[*watch]struct{}{}
	}
	w.watches[rid][x] = struct{}{}
	x.stop = func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.watches[rid], x)
		if len(w.watches[rid]) == 0 {
			delete(w.watches, rid)
		}
	}
	return x
}

// follow registers a watch of rid, merges in the status the database holds
// (read after registering, so that no event falls between the two), and
// calls send with each new status until the export finished (send's last
// call has a final status), send fails, ctx ends, or the service stops
// (errStopping). It returns send's error or ctx's.
//
// When beat is not nil it is called after every idle heartbeat interval (a
// keep-alive for streams through proxies); its error ends the watch too.
func (w *watcher) follow(ctx context.Context, rid string, stored func() (liveStatus, error), send func(liveStatus) error, heartbeat time.Duration, beat func() error) error {
	var tick <-chan time.Time
	if beat != nil && heartbeat > 0 {
		t := time.NewTicker(heartbeat)
		defer t.Stop()
		tick = t.C
	}
	x := w.watch(rid)
	defer x.stop()
	st, err := stored()
	if err != nil {
		return err
	}
	x.update(st)
	var last liveStatus
	for {
		cur := x.current()
		if cur != last {
			if err := send(cur); err != nil {
				return err
			}
			last = cur
			if final(cur.Status) {
				return nil
			}
		}
		select {
		case <-x.changed:
		case <-tick:
			if err := beat(); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-w.done:
			return errStopping
		}
	}
}

// errStopping ends the watches when the service stops.
var errStopping = errors.New("the service is stopping; watch again")

func final(status string) bool {
	return status == events.StatusCompleted || status == events.StatusFailed
}

// watch is one client's view of an export's status: the latest known, kept
// monotonic (a final status is never replaced, progress never goes back),
// since events may arrive out of order or twice.
type watch struct {
	mu      sync.Mutex
	st      liveStatus
	changed chan struct{} // capacity 1: a wake-up, not a queue
	stop    func()
}

func (x *watch) update(st liveStatus) {
	x.mu.Lock()
	cur := x.st
	next := cur
	switch {
	case cur.RID == "", final(st.Status) && !final(cur.Status):
		next = st
	case final(cur.Status):
		// final: only Total may still arrive, with the stored status
	case st.Status == events.StatusRunning && (cur.Status != events.StatusRunning || st.Progress > cur.Progress):
		next.Status, next.Progress = st.Status, st.Progress
	}
	next.Total = max(cur.Total, st.Total) // events do not carry it
	x.st = next
	x.mu.Unlock()
	if next != cur {
		select {
		case x.changed <- struct{}{}:
		default:
		}
	}
}

func (x *watch) current() liveStatus {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.st
}

// liveStatus is an export's status as the watches send it: the status of
// GET /api/Export/Status and Total, the rows the export will hold, counted
// when the watch started (0 when unknown).
type liveStatus struct {
	events.ExportStatus
	Total int64 `json:"Total,omitempty"`
}
