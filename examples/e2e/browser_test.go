package e2e_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/examples/demo"
	"github.com/switchyard-go/switchyard/internal/brokertest"
)

// chromiumPath returns the Chromium to drive: $CHROMIUM, or chromium or
// chromium-browser on the PATH. Without one the test skips, telling how to
// install it, and fails under CI=true.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const how = "headless Chromium is not installed: apt-get install -y chromium (or set CHROMIUM to a Chrome binary)"
	if brokertest.InCI() {
		t.Fatal(how)
	}
	t.Skip(how)
	return ""
}

// page is a tab of a headless Chromium of the test's own (a fresh profile,
// no network but this machine's loopback), closed when the test ends.
type page struct {
	ctx       context.Context
	t         *testing.T
	downloads chan string // GUIDs of completed downloads, named so in dir
	dir       string
}

// openBrowser starts Chromium and returns a tab. When the test fails, a
// screenshot of the page is saved (see screenshotDir) and its path logged.
func openBrowser(t *testing.T) *page {
	path := chromiumPath(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	p := &page{ctx: ctx, t: t, downloads: make(chan string, 8), dir: t.TempDir()}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("SWITCHYARD_SCREENSHOTS") == "always" {
			p.screenshot()
		}
		cancel()
		cancelAlloc()
	})
	// Start the browser with a context without a deadline (it lives as long
	// as the first call's context), then let downloads through.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("about:blank")))
	progress := chromedp.Events(ctx, browser.DownloadProgress)
	go func() {
		for ev, err := range progress {
			if err != nil {
				return
			}
			if ev.State == browser.DownloadProgressStateCompleted {
				p.downloads <- ev.GUID
			}
		}
	}()
	_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: p.dir, EventsEnabled: ptrTo(true),
	})
	require.NoError(t, err)
	return p
}

func ptrTo[T any](v T) *T { return &v }

// screenshotDir is where a test's screenshots go: its artifact directory
// with go test -artifacts, otherwise switchyard-e2e-screenshots in the
// temporary directory (kept after the test).
func screenshotDir(t *testing.T) string {
	if f := testingFlag("test.artifacts"); f == "true" {
		return t.ArtifactDir()
	}
	name := regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name(), "_")
	dir := filepath.Join(os.TempDir(), "switchyard-e2e-screenshots", name)
	_ = os.MkdirAll(dir, 0o755)
	return dir
}

// screenshot saves the whole page as PNG and logs where.
func (p *page) screenshot() {
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Logf("screenshot: %v", err)
		return
	}
	path := filepath.Join(screenshotDir(p.t), time.Now().Format("150405.000")+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Logf("screenshot: %v", err)
		return
	}
	p.t.Logf("screenshot of the page: %s", path)
}

// do runs steps within d.
func (p *page) do(d time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, d)
	defer cancel()
	require.NoError(p.t, chromedp.Do(ctx, steps...))
}

// eval returns the value of a JavaScript expression.
func eval[T any](p *page, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	require.NoError(p.t, err, "%s", expr)
	return v
}

// waitJS waits until the expression is truthy, failing the test with what
// the page shows after d.
func (p *page) waitJS(d time.Duration, what, expr string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, d+5*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(d))); err != nil {
		p.t.Fatalf("waiting %v for %s (%s): %v", d, what, expr, err)
	}
}

// download waits for the next completed download and returns its bytes.
func (p *page) download(d time.Duration) []byte {
	p.t.Helper()
	select {
	case guid := <-p.downloads:
		b, err := os.ReadFile(filepath.Join(p.dir, guid))
		require.NoError(p.t, err)
		return b
	case <-time.After(d):
		p.t.Fatalf("no download completed within %v", d)
		return nil
	}
}

// startDemo runs the demo (every service, the console on a port of its own)
// on url until the test ends and returns it.
func startDemo(t *testing.T, e *env) *demo.Demo {
	d, err := demo.Start(context.Background(), demo.Config{PubSubURL: e.url, Namespace: e.ns, BasePort: -1, Seed: seedRows, Out: io.Discard, Logger: e.log})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, d.Close()) })
	return d
}

// getAs GETs url with the X-User header and returns the body of a 200.
func getAs(t *testing.T, user, url string) []byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("X-User", user)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	return b
}

func jsString(s string) string { return fmt.Sprintf("%q", s) }

// testingFlag returns the value of a go test flag ("" when unset).
func testingFlag(name string) string {
	if f := flagLookup(name); f != nil {
		return f.Value.String()
	}
	return ""
}

var flagLookup = flag.Lookup
