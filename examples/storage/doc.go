// Package storage is where the exporter writes finished CSV files and the
// transactions service reads them back or hands out links to them: a small
// interface (Storage, and Signer for buckets that can sign URLs) on
// gocloud.dev/blob, chosen by URL.
//
//	file:///ABSOLUTE/DIR   a local directory (created on Open; the default)
//	file:RELATIVE/DIR      a directory relative to the working directory
//	s3://BUCKET?region=R   Amazon S3, or any S3 server with endpoint=URL&use_path_style=true
//	gs://BUCKET            Google Cloud Storage
//
// Why gocloud.dev/blob: it is the Go Cloud Development Kit's portable blob
// API, the common way Go services reach S3, Cloud Storage, Azure and local
// files through one interface chosen by URL, with the pieces this example
// needs done right by each driver: a writer whose result appears only when
// Close succeeds (and is discarded when its context ends first), typed
// not-found errors, and presigned URLs. The alternative, one SDK per cloud
// behind an interface of our own, is the code gocloud.dev already is. The
// version in go.mod is one known to build with this module's Go.
//
// Credentials come from each driver's usual sources (for S3 the AWS
// environment variables or shared config; for Cloud Storage Application
// Default Credentials); they never appear in URLs, logs or errors of this
// package. On s3:// and gs://, SignedURL hands out time-limited GET URLs,
// so clients download finished exports from the bucket itself; a directory
// cannot sign, and downloads then go through the transactions service.
//
// A writer killed before Close leaves nothing visible under its key: in a
// directory a temporary file KEY.<hex>.tmp beside it, which RemovePartials
// removes (the exporter calls it when it re-claims an export); in S3 an
// unfinished multipart upload, which a bucket lifecycle rule
// (AbortIncompleteMultipartUpload) removes.
package storage
