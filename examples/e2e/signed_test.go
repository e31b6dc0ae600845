package e2e_test

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/pubsub"
)

// TestExportSignedURL: with exports stored in S3 (gofakes3 over HTTP), a
// completed export's Url is a time-limited presigned URL of the object, and
// the client downloads the file from storage, not through the service.
func TestExportSignedURL(t *testing.T) {
	backend := s3mem.New()
	require.NoError(t, backend.CreateBucket("exports"))
	s3 := httptest.NewServer(gofakes3.New(backend).Server())
	defer s3.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))

	e := newEnv(t, "mem://e2e-"+pubsub.NewID()[:12])
	s := startExportStack(t, e, exportConfig{exporters: 1,
		storageURL: "s3://exports?region=us-east-1&use_path_style=true&endpoint=" + s3.URL})
	rid := s.request(t, "2025-04-01", "2025-04-30", "")
	st := s.waitStatus(t, rid, events.StatusCompleted, 20*time.Second)
	require.True(t, strings.HasPrefix(st.URL, s3.URL+"/exports/exports/"+rid+".csv?"), "a URL of the bucket: %s", st.URL)
	assert.Contains(t, st.URL, "X-Amz-Signature=")
	assert.Contains(t, st.URL, "X-Amz-Expires=900", "15 minutes")
	code, body := call(t, http.MethodGet, st.URL, nil)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, s.wantCSV(t, "2025-04-01", "2025-04-30"), parseCSV(t, body))
	code, body = call(t, http.MethodGet, s.api+"/api/Export/Download?RID="+rid, nil)
	require.Equal(t, http.StatusOK, code, "the download through the service still works")
	assert.Equal(t, s.wantCSV(t, "2025-04-01", "2025-04-30"), parseCSV(t, body))
}
