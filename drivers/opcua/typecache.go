package opcua

import (
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/internal/logx"
)

// provisionalType is the type of a tag configured without a type whose node has never been
// read: a Double holds every Boolean, integer and float value a node can have (integers
// above 2^53 lose precision), so the metric is usable from the first start.
const provisionalType = drivers.Double

// typeCache keeps the types learned from servers for tags configured without a type, so that
// the next start describes them (and births them) with the node's own type. Sparkplug births
// need every type before the first connect; this is how a tag without a type gets the
// tightest one from its second start on.
type typeCache struct {
	path string
	log  *slog.Logger

	mu sync.Mutex
	m  map[string]map[string]string // device → node id → type name
}

const typeCacheFile = "opcua-types.json"

// loadTypeCache reads the cache in dir ("" keeps nothing). A missing or unreadable file is an
// empty cache: the tags are then published as Double until learned again.
func loadTypeCache(dir string, log *slog.Logger) *typeCache {
	c := &typeCache{log: log, m: map[string]map[string]string{}}
	if dir == "" {
		return c
	}
	c.path = filepath.Join(dir, typeCacheFile)
	b, err := os.ReadFile(c.path)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			log.Warn("cannot read the learned tag types", "file", c.path, "err", logx.Err(err))
		}
		return c
	}
	if err := json.Unmarshal(b, &c.m); err != nil {
		log.Warn("ignoring the learned tag types", "file", c.path, "err", logx.Err(err))
		c.m = map[string]map[string]string{}
	}
	return c
}

// get returns the type learned for a device's node, or the provisional type.
func (c *typeCache) get(device, node string) drivers.Type {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, err := ParseType(c.m[device][node]); err == nil && t != drivers.Unknown {
		return t
	}
	return provisionalType
}

// learn records a device's node type and saves the cache when it changed. It reports whether
// the type is new.
func (c *typeCache) learn(device, node string, t drivers.Type) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m[device][node] == t.String() {
		return false
	}
	if c.m[device] == nil {
		c.m[device] = map[string]string{}
	}
	c.m[device][node] = t.String()
	if c.path == "" {
		return true
	}
	if err := c.saveLocked(); err != nil {
		c.log.Warn("cannot save the learned tag types", "file", c.path, "err", logx.Err(err))
	}
	return true
}

// saveLocked writes the cache atomically.
func (c *typeCache) saveLocked() error {
	b, err := json.MarshalIndent(c.m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o755); err != nil {
		return err
	}
	tmp := c.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, c.path)
}

// learnType records the tight type of a tag configured without a type; when it differs from
// the type the tag is published as in this run, it says so once.
func (d *device) learnType(t *tag, tight drivers.Type) {
	if !d.drv.types.learn(d.name, t.node.String(), tight) || tight == t.typ {
		return
	}
	d.log.Info("tag type learned from the server: it is published with it from the next start",
		"tag", t.label(), "now", t.typ.String(), "next", tight.String(),
		"or_set", "type = \""+tight.String()+"\"")
}
