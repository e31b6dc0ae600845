package nats

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// janitorInterval is how often a broker purges, from the limits-retention
// streams it uses, the messages every consumer is done with.
const janitorInterval = 5 * time.Second

// interestRetentionSafe reports whether the server's interest retention
// keeps messages across a restart. NATS Server 2.9 does not: after a
// restart, messages that a consumer had not acknowledged yet are lost (a
// plain nats.go client loses them too). It is fixed in 2.10.
func interestRetentionSafe(version string) bool {
	major, rest, _ := strings.Cut(version, ".")
	minor, _, _ := strings.Cut(rest, ".")
	ma, err1 := strconv.Atoi(major)
	mi, err2 := strconv.Atoi(minor)
	if err1 != nil || err2 != nil {
		return true // unknown: assume a current server
	}
	return ma > 2 || ma == 2 && mi >= 10
}

// janitor removes, every janitorInterval, the messages of the broker's
// limits-retention topic streams that no consumer needs any more, which
// is what interest retention does on the server. It stops when done is
// closed.
func (b *broker) janitor(done <-chan struct{}) {
	for {
		select {
		case <-time.After(janitorInterval + time.Duration(rand.Int64N(int64(janitorInterval/5)))):
		case <-done:
			return
		}
		b.streams.Range(func(topic, retention any) bool {
			if retention != jetstream.LimitsPolicy {
				return true
			}
			ctx, cancel := context.WithTimeout(context.Background(), attemptTimeout)
			defer cancel()
			if n, err := b.sweep(ctx, b.names.stream(topic.(string))); err != nil {
				b.log.Debug("nats: purge settled messages", "stream", b.names.stream(topic.(string)), "err", err)
			} else if n > 0 {
				b.log.Debug("nats: purged settled messages", "stream", b.names.stream(topic.(string)), "purged", n)
			}
			return true
		})
	}
}

// sweep purges from stream the messages below the lowest sequence that
// some consumer may still need, and returns how many it purged. A
// consumer with nothing pending and nothing unacknowledged needs nothing
// up to the stream's last sequence, read before the consumers; any other
// needs what follows its ack floor. Messages published meanwhile have
// higher sequences and are never purged; groups created meanwhile start
// after them.
func (b *broker) sweep(ctx context.Context, stream string) (int, error) {
	s, err := b.js.Stream(ctx, stream)
	if err != nil {
		return 0, err
	}
	state := s.CachedInfo().State
	if state.Msgs == 0 {
		return 0, nil
	}
	floor := state.LastSeq
	consumers := s.ListConsumers(ctx)
	for ci := range consumers.Info() {
		if ci.NumPending > 0 || ci.NumAckPending > 0 {
			floor = min(floor, ci.AckFloor.Stream)
		}
	}
	if err := consumers.Err(); err != nil {
		return 0, err
	}
	if floor < state.FirstSeq {
		return 0, nil
	}
	return b.purgeRequest(ctx, stream, jetstream.StreamPurgeRequest{Sequence: floor + 1})
}

// purgeResponse is the answer to a stream purge request.
type purgeResponse struct {
	Success bool                `json:"success"`
	Purged  int                 `json:"purged"`
	Error   *jetstream.APIError `json:"error"`
}

// purgeRequest sends a purge request for stream and returns how many
// messages it removed. (jetstream.Stream.Purge does not tell.)
func (b *broker) purgeRequest(ctx context.Context, stream string, req jetstream.StreamPurgeRequest) (int, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return 0, err
	}
	msg, err := b.nc.RequestWithContext(ctx, "$JS.API.STREAM.PURGE."+stream, data)
	if err != nil {
		return 0, err
	}
	var resp purgeResponse
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return 0, fmt.Errorf("nats: purge of stream %s: bad answer: %w", stream, err)
	}
	if resp.Error != nil {
		return 0, resp.Error
	}
	return resp.Purged, nil
}
