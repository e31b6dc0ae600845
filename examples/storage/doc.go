// Package storage is where the exporter writes finished CSV files and the
// transactions service reads them back for download: a small blob interface,
// chosen by URL, so that a bucket can replace the local directory without
// touching the services.
//
//	file:///ABSOLUTE/DIR   a local directory (created on Open)
//	file:RELATIVE/DIR      a directory relative to the working directory
//
// Another scheme (for example gs:// with a Cloud Storage implementation)
// would be one more case in Open.
package storage
