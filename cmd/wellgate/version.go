package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set at build time by the Makefile: -ldflags "-X main.version=… -X main.commit=… -X main.buildDate=…".
var (
	version   = "dev"
	commit    = ""
	buildDate = ""
)

// buildVersion is the version the gateway reports (node metric, status page): the stamped one,
// or "dev-<commit>" for a plain `go build`.
func buildVersion() string {
	if version != "dev" {
		return version
	}
	if rev := vcsSetting("vcs.revision"); len(rev) >= 12 {
		return "dev-" + rev[:12]
	}
	return version
}

// versionLine is what `wellgate version` prints: "wellgate VERSION (commit C, built D, goX)".
func versionLine() string {
	c, d := commit, buildDate
	if c == "" {
		c = vcsSetting("vcs.revision")
	}
	if d == "" {
		d = vcsSetting("vcs.time")
	}
	if len(c) > 12 {
		c = c[:12]
	}
	if c == "" {
		c = "unknown"
	}
	if d == "" {
		d = "unknown"
	}
	return fmt.Sprintf("wellgate %s (commit %s, built %s, %s %s/%s)", buildVersion(), c, d,
		runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func vcsSetting(key string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == key {
				return s.Value
			}
		}
	}
	return ""
}
