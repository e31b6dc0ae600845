package e2e_test

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/examples/console"
	"github.com/switchyard-go/switchyard/examples/transactions"
	"github.com/switchyard-go/switchyard/pubsub"
)

// TestConsoleExport drives the console, as the transactions service serves
// it, in headless Chromium: as ada, the
// synchronous download; then an asynchronous export whose status the page
// shows changing live (running with progress, then completed), and its
// download, byte for byte the synchronous CSV (and the service's); as bob,
// the auth service's denial, shown with its reason.
func TestConsoleExport(t *testing.T) {
	forMemAndAMQP(t, func(t *testing.T, e *env) {
		chromiumPath(t) // skips before starting anything when there is none
		g := newGate()
		t.Cleanup(g.open)
		s := startGRPCStack(t, e, grpcConfig{exporters: 1, workerFiles: g.wrap}, func(d *transactions.Deps) {
			c, err := console.New(context.Background(), console.Deps{Logger: e.log})
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Close() })
			d.Console = c
		})
		want := getAs(t, "ada", s.api+"/api/Export?StartDate=2025-01-01&EndDate=2025-12-31")
		p := openBrowser(t) // after the services: its screenshot is taken before they stop

		p.do(15*time.Second,
			chromedp.Navigate(s.api+"/console/"),
			chromedp.WaitVisible(chromedp.CSS(`body[data-ready="true"]`)),
			chromedp.SetValue(chromedp.CSS("#start"), "2025-01-01"),
			chromedp.SetValue(chromedp.CSS("#end"), "2025-12-31"),
			chromedp.SetValue(chromedp.CSS("#user"), "ada"),
			chromedp.Click(chromedp.CSS("#sync-download")),
		)
		sync := p.download(15 * time.Second)
		assert.Equal(t, string(want), string(sync), "the page's synchronous download is the service's CSV")
		require.Greater(t, len(parseCSV(t, want)), 100, "a range with rows")
		p.waitJS(5*time.Second, "the row count", `document.querySelector("#sync-result").dataset.rows !== undefined`)
		assert.Equal(t, len(parseCSV(t, want))-1, eval[int](p, `Number(document.querySelector("#sync-result").dataset.rows)`))

		p.do(5*time.Second, chromedp.Click(chromedp.CSS("#async-request")))
		p.waitJS(10*time.Second, "the page to watch the export", `(document.querySelector("#exports tbody tr .status") || {dataset: {}}).dataset.history`)
		g.open() // the exporter writes once the page watches
		p.waitJS(30*time.Second, "the export to complete", `document.querySelector('#exports tbody tr .status[data-status="completed"]')`)
		history := eval[string](p, `(document.querySelector("#exports tbody tr .status") || {dataset: {}}).dataset.history`)
		assert.Regexp(t, `^(pending:0 )?(running:\d+ )+completed:\d+ $`, history, "the status changed live")
		// 2000 rows, progress every 100: the page shows some of the 19
		// progress events (a watch sends the latest status, so some may be
		// passed over when they come faster than it sends).
		progressed := regexp.MustCompile(`running:[1-9]\d* `).FindAllString(history, -1)
		assert.GreaterOrEqual(t, len(progressed), 2, "progress came as the exporter reported it: %s", history)
		p.do(5*time.Second, chromedp.Click(chromedp.CSS("#exports tbody tr a.download")))
		async := p.download(15 * time.Second)
		assert.Equal(t, string(sync), string(async), "the asynchronous file is the synchronous CSV")
		assert.Equal(t, "", eval[string](p, `document.querySelector("#export-message").textContent`), "no message for ada")

		p.do(5*time.Second,
			chromedp.SetValue(chromedp.CSS("#user"), "bob"),
			chromedp.Click(chromedp.CSS("#async-request")),
		)
		p.waitJS(10*time.Second, "the denial", `document.querySelector('#export-message[data-status="403"]')`)
		msg := eval[string](p, `document.querySelector("#export-message").textContent`)
		assert.Equal(t, "Denied: bob may not export transactions. no rule of demo-policy.txt allows bob to export transactions", msg)
		assert.Equal(t, "denied", eval[string](p, `document.querySelector("#export-message").className`))
		assert.Equal(t, 1, eval[int](p, `document.querySelectorAll("#exports tbody tr").length`), "bob's request made no row")
	})
}

// TestConsoleLiveEvents drives the live view in headless Chromium: an
// activity posted from the page shows up acked by audit, analytics and
// notifier; one set to crash analytics shows analytics retrying it, then
// dead-lettering it, while the other two ack it; its dead letter is listed,
// and Replay sends it back to analytics alone, which retries it from
// attempt 1 and dead-letters it again.
func TestConsoleLiveEvents(t *testing.T) {
	forMemAndAMQP(t, func(t *testing.T, e *env) {
		chromiumPath(t)
		d := startDemo(t, e)
		p := openBrowser(t)
		user := "eve-" + pubsub.NewID()[:6]
		p.do(15*time.Second,
			chromedp.Navigate(d.URL("console")+"/console/"),
			chromedp.WaitVisible(chromedp.CSS(`body[data-ready="true"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#live-state[data-state="live"]`)),
			chromedp.SetValue(chromedp.CSS("#act-user"), user),
			chromedp.SetValue(chromedp.CSS("#act-type"), "logged_in"),
			chromedp.Click(chromedp.CSS("#act-post")),
		)
		p.waitJS(10*time.Second, "the publish", `document.querySelector("#act-result").dataset.id`)
		id := eval[string](p, `document.querySelector("#act-result").dataset.id`)
		outcomes := func(id, group string) string {
			return eval[string](p, `(document.querySelector('#events tr[data-id=`+jsString(id)+`] td[data-group=`+jsString(group)+`]') || {dataset: {}}).dataset.outcomes || ""`)
		}
		p.waitJS(15*time.Second, "three groups to ack "+id,
			`["audit","analytics","notifier"].every(g => (document.querySelector('#events tr[data-id=`+jsString(id)+`] td[data-group="' + g + '"]') || {dataset: {}}).dataset.outcomes === "acked")`)
		assert.Equal(t, user, eval[string](p, `document.querySelector('#events tr[data-id=`+jsString(id)+`]').dataset.user`))

		p.do(5*time.Second,
			chromedp.SetValue(chromedp.CSS("#act-type"), "viewed_page"),
			chromedp.SetValue(chromedp.CSS("#act-crash"), "analytics"),
			chromedp.Click(chromedp.CSS("#act-post")),
		)
		p.waitJS(10*time.Second, "the second publish", `document.querySelector("#act-result").dataset.id !== `+jsString(id))
		crash := eval[string](p, `document.querySelector("#act-result").dataset.id`)
		const deadAfterRetries = "retried,retried,retried,retried,dead_lettered" // default 5 attempts
		p.waitJS(20*time.Second, "analytics to dead-letter "+crash,
			`(document.querySelector('#events tr[data-id=`+jsString(crash)+`] td[data-group="analytics"]') || {dataset: {}}).dataset.outcomes === "`+deadAfterRetries+`"`)
		assert.Equal(t, "acked", outcomes(crash, "audit"))
		assert.Equal(t, "acked", outcomes(crash, "notifier"))

		row := `#deadletters div[data-group="analytics"] tr[data-id=` + jsString(crash) + `]`
		p.waitJS(10*time.Second, "the dead letter in the list", `document.querySelector('`+row+`')`)
		assert.Equal(t, "5 attempts", eval[string](p, `document.querySelector('`+row+` td:nth-child(3)').textContent`))
		assert.Equal(t, "0", eval[string](p, `document.querySelector('#deadletters div[data-group="audit"]').dataset.count`))
		p.do(5*time.Second, chromedp.Click(chromedp.CSS(row+" button.replay")))
		p.waitJS(20*time.Second, "the replayed message to be dead-lettered again",
			`(document.querySelector('#events tr[data-id=`+jsString(crash)+`] td[data-group="analytics"]') || {dataset: {}}).dataset.outcomes === "`+deadAfterRetries+","+deadAfterRetries+`"`)
		chips := eval[[]string](p, `[...document.querySelectorAll('#events tr[data-id=`+jsString(crash)+`] td[data-group="analytics"] .o')].map(c => c.textContent.replace(/ \(.*\)$/, ""))`)
		require.Len(t, chips, 10)
		assert.Equal(t, "↻ retried #1", chips[5], "the replay starts again at attempt 1")
		assert.Equal(t, "✗ dead-lettered #5", chips[9])
		assert.Equal(t, "acked", outcomes(crash, "audit"), "the replay went to analytics only")
		assert.Equal(t, "acked", outcomes(crash, "notifier"))
		p.waitJS(10*time.Second, "the dead letter listed again", `document.querySelector('`+row+`')`)
		assert.Equal(t, "1", eval[string](p, `document.querySelector('#deadletters div[data-group="analytics"]').dataset.count`))
	})
}
