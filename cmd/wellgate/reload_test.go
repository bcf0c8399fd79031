package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wellgate/wellgate/internal/peers"
)

// syncBuffer is a log destination the test reads while the gateway writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// apiTag is one tag of /api/tags.
type apiTag struct {
	Device  string `json:"device"`
	Tag     string `json:"tag"`
	Quality string `json:"quality"`
	Value   any    `json:"value"`
}

// waitAPITag polls /api/tags until device/tag is good.
func waitAPITag(t *testing.T, webAddr, device, tag string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var tags []apiTag
		resp, err := http.Get("http://" + webAddr + "/api/tags")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&tags)
			resp.Body.Close()
		}
		for _, tg := range tags {
			if tg.Device == device && tg.Tag == tag && tg.Quality == "good" {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s not good on /api/tags after 20s: %v %+v", device, tag, err, tags)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
}

// TestSighupReload: `wellgate run` gets SIGHUP (from the test's channel, the process's signals
// untouched) with a broken file: it keeps running and logs every problem with its FILE:LINE,
// as `check` prints them; then with a file that adds a tag: the tag shows in /api/tags.
func TestSighupReload(t *testing.T) {
	webAddr := peers.FreePort(t)
	path := counterConfig(t, webAddr, peers.FreePort(t), "")
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	hup := make(chan os.Signal)
	results := make(chan error)
	ctx, cancel := context.WithCancel(withHangups(context.Background(), hup, func(err error) { results <- err }))
	defer cancel()
	logs := &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- runContext(ctx, []string{"run", "-config", path}, logs, logs) }()
	waitAPITag(t, webAddr, "Counter-1", "Count")

	// A broken file: two problems, each reported at its line.
	n := strings.Count(string(orig), "\n")
	broken := string(orig) + "[[device.tag]]\nname = \"Zero\"\nstep = 0\n[[device.tag]]\nname = \"Bad\"\nstepp = 2\n"
	if err := os.WriteFile(path, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	hup <- nil
	if err := <-results; err == nil {
		t.Fatal("a broken file was accepted")
	}
	var check bytes.Buffer
	if code := run([]string{"check", "-config", path}, &check, &check); code != 1 {
		t.Fatalf("check accepts the broken file: %s", check.String())
	}
	for _, want := range []string{
		fmt.Sprintf(`%s:%d: device \"Counter-1\": tag \"Zero\": step must not be 0`, path, n+3),
		fmt.Sprintf(`%s:%d: device \"Counter-1\": tag \"Bad\": unknown key \"device.tag.stepp\"`, path, n+6),
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log lacks %s:\n%s", want, logs.String())
		}
		if plain := strings.ReplaceAll(want, `\"`, `"`); !strings.Contains(check.String(), plain) {
			t.Errorf("check does not say %s either:\n%s", plain, check.String())
		}
	}
	select {
	case code := <-done:
		t.Fatalf("run exited (%d) after a broken file", code)
	default:
	}
	waitAPITag(t, webAddr, "Counter-1", "Count")

	// A file that adds a tag.
	if err := os.WriteFile(path, append(orig, "[[device.tag]]\nname = \"Up2\"\nstep = 2\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	hup <- nil
	if err := <-results; err != nil {
		t.Fatalf("reload of a valid file: %v\n%s", err, logs.String())
	}
	waitAPITag(t, webAddr, "Counter-1", "Up2")

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("run: exit %d\n%s", code, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
}
