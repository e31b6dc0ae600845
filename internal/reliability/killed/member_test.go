//go:build reliability

package killed

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport"
)

// Environment of a member process: memberEnv=1 selects the member role in
// TestMain; the others say what it joins.
const (
	memberEnv      = "SWITCHYARD_KILLED_MEMBER"
	memberURLEnv   = "SWITCHYARD_KILLED_URL"
	memberTopicEnv = "SWITCHYARD_KILLED_TOPIC"
	memberGroupEnv = "SWITCHYARD_KILLED_GROUP"
)

// memberConcurrency is each member's WithConcurrency.
const memberConcurrency = 4

// workTime is the work a handler simulates for an ordinary message, so that
// a killed member has several handlers in flight.
const workTime = 2 * time.Millisecond

// trapPayload marks the messages whose handler blocks until the parent
// releases it (or kills the member).
const trapPayload = "trap"

// Records a member writes to its record pipe (file descriptor 3), one line
// each, written with one write(2) of less than PIPE_BUF bytes so that a
// SIGKILL cannot leave half of one in the pipe:
//
//	R              subscribed
//	S <id> <att> <ns>  a handler started with Message ID id and Attempt att
//	                   at ns (Unix nanoseconds, the member's clock)
//	D <id> <att> <ns>  that handler completed (it returns nil next)
//
// Commands the parent writes to a member's stdin:
//
//	R <id>         release the trap handler of message id
//	Q              shut down gracefully and exit 0
//
// stdin's EOF (the parent died) exits the member too.

// runMember is the member role: it joins the group and handles messages
// until told to stop. It returns the process's exit code.
func runMember() int {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	records := os.NewFile(3, "records")
	if records == nil {
		fmt.Fprintln(os.Stderr, "member: no record pipe on fd 3")
		return 2
	}
	write := func(line string) {
		if _, err := records.Write([]byte(line)); err != nil {
			fmt.Fprintln(os.Stderr, "member: record:", err)
			os.Exit(3)
		}
	}
	rel := newReleases()
	handler := func(ctx context.Context, m *pubsub.Message) error {
		trap := string(m.Payload) == trapPayload
		var released <-chan struct{}
		if trap {
			released = rel.of(m.ID) // before the start record: the parent may answer at once
		}
		write(fmt.Sprintf("S %s %d %d\n", m.ID, m.Attempt, time.Now().UnixNano()))
		if trap {
			select {
			case <-released:
			case <-ctx.Done():
				return ctx.Err()
			}
		} else {
			time.Sleep(workTime) // the handler's simulated work, not synchronisation
		}
		write(fmt.Sprintf("D %s %d %d\n", m.ID, m.Attempt, time.Now().UnixNano()))
		return nil
	}

	ctx := context.Background()
	openCtx, cancel := context.WithTimeout(ctx, time.Minute)
	b, err := transport.Open(openCtx, os.Getenv(memberURLEnv), pubsub.WithLogger(logger))
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "member: open:", err)
		return 1
	}
	_, err = b.Subscribe(ctx, os.Getenv(memberTopicEnv), os.Getenv(memberGroupEnv), handler, pubsub.WithConcurrency(memberConcurrency))
	if err != nil {
		fmt.Fprintln(os.Stderr, "member: subscribe:", err)
		_ = b.Close()
		return 1
	}
	write("R\n")

	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		switch cmd {
		case "R":
			rel.release(arg)
			continue
		case "Q":
		default:
			fmt.Fprintf(os.Stderr, "member: unknown command %q\n", sc.Text())
			continue
		}
		break
	}
	shutCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rel.releaseAll()
	if sd, ok := b.(interface{ Shutdown(context.Context) error }); ok {
		err = sd.Shutdown(shutCtx)
	} else {
		err = b.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "member: shutdown:", err)
		return 1
	}
	return 0
}

// releases holds one channel per trap message, closed when the parent
// releases it.
type releases struct {
	mu  sync.Mutex
	m   map[string]chan struct{}
	all bool
}

func newReleases() *releases { return &releases{m: map[string]chan struct{}{}} }

// of returns the channel of message id, made on first use by either side.
func (r *releases) of(id string) chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := r.m[id]
	if ch == nil {
		ch = make(chan struct{})
		r.m[id] = ch
		if r.all {
			close(ch)
		}
	}
	return ch
}

// release lets the trap handler of id complete.
func (r *releases) release(id string) {
	ch := r.of(id)
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// releaseAll lets every trap handler complete, now and later (shutdown).
func (r *releases) releaseAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all = true
	for _, ch := range r.m {
		select {
		case <-ch:
		default:
			close(ch)
		}
	}
}
