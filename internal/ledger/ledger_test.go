package ledger_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/ledger"
)

func TestCounts(t *testing.T) {
	l := ledger.New()
	l.Confirmed("a", "b", "c")
	l.Failed(2, errors.New("nacked"))
	for _, id := range []string{"a", "a", "b", "x"} {
		l.Received(id)
	}
	c := l.Counts()
	assert.Equal(t, 3, c.Confirmed)
	assert.Equal(t, 2, c.Failed)
	assert.EqualError(t, c.LastErr, "nacked")
	assert.Equal(t, 3, c.Distinct)
	assert.Equal(t, []string{"c"}, c.Lost)
	assert.Equal(t, 1, c.Duplicates)
	assert.Equal(t, 1, c.Unconfirmed, "x arrived though its Publish failed")
	assert.False(t, l.WaitAllReceived(10*time.Millisecond), "c never arrives")
}

func TestWaitAllReceived(t *testing.T) {
	l := ledger.New()
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = fmt.Sprint(i)
	}
	l.Confirmed(ids...)
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() { l.Received(id) })
	}
	require.True(t, l.WaitAllReceived(10*time.Second))
	wg.Wait()
	assert.Empty(t, l.Counts().Lost)
	assert.Equal(t, 100, l.NConfirmed())
}
