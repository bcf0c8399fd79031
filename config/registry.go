package config

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/wellgate/wellgate/drivers"
)

// A driver plugs into wellgate by registering a DriverSpec, from an init function in its own
// package, under the name a device's driver key gives; drivers/all imports the built-in ones.
// The loader keeps the keys every device and tag has (Device, Tag) and hands the rest of each
// [[device]] and [[device.tag]] table to the driver: it checks the keys against the driver's
// settings types (unknown keys and wrong types, each with its line), decodes them over the
// driver's defaults and calls the driver's Validate with every device that uses it. Nothing
// in this package names a driver.

// BuiltDriver is what a driver's Build returns: a driver that describes its devices and tags
// before it runs.
type BuiltDriver interface {
	drivers.Driver
	drivers.Describer
}

// DriverSpec is one driver as the configuration knows it.
type DriverSpec struct {
	// Name is the value of the driver key that selects the driver.
	Name string
	// NewDevice returns a pointer to a new struct whose fields, by their toml tags, are the
	// driver's keys of a [[device]] table, set to the driver's defaults. The table is decoded
	// over it, and it becomes Device.Settings. Required.
	NewDevice func() any
	// NewTag does the same for a [[device.tag]] table (Tag.Settings). Required; a driver whose
	// tags have only the common keys returns a pointer to an empty struct.
	NewTag func() any
	// Validate checks every device of the file that uses the driver, disabled ones too, with
	// their tags, and returns every problem it finds, made with Device.Errorf and
	// Device.TagErrorf. It does no I/O. A device or tag whose Settings is nil had a problem
	// reported already: Validate checks nothing that needs its settings. Optional.
	Validate func(devices []*Device) Errors
	// Build makes the driver for enabled devices of a configuration that Load accepted. It
	// opens nothing; the gateway calls it once, with every enabled device of the driver.
	// Required.
	Build func(devices []*Device, log *slog.Logger) (BuiltDriver, error)
}

// registry is the set of known drivers, in the order they registered (which is the order
// messages list them in).
type registry struct {
	mu    sync.RWMutex
	specs []DriverSpec
}

// registered holds the drivers registered with RegisterDriver.
var registered registry

// RegisterDriver makes a driver known under spec.Name. Drivers call it from an init function.
// It panics on a spec that cannot work (no name, a name already taken, a missing function,
// settings that are not pointers to structs or that declare a common key): those are
// programming errors, found the first time the program starts.
func RegisterDriver(spec DriverSpec) {
	if err := registered.add(spec); err != nil {
		panic(err)
	}
}

// Drivers returns every registered driver, in the order they registered.
func Drivers() []DriverSpec { return registered.list() }

// LookupDriver returns the driver registered under name.
func LookupDriver(name string) (DriverSpec, bool) { return registered.lookup(name) }

func (r *registry) add(spec DriverSpec) error {
	if spec.Name == "" {
		return errors.New("config: a driver needs a name")
	}
	if spec.NewDevice == nil || spec.NewTag == nil || spec.Build == nil {
		return fmt.Errorf("config: driver %q: NewDevice, NewTag and Build are required", spec.Name)
	}
	if err := checkSettings(spec.Name, "device", spec.NewDevice, reflect.TypeFor[Device]()); err != nil {
		return err
	}
	if err := checkSettings(spec.Name, "tag", spec.NewTag, reflect.TypeFor[Tag]()); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if slices.ContainsFunc(r.specs, func(s DriverSpec) bool { return s.Name == spec.Name }) {
		return fmt.Errorf("config: driver %q is registered twice", spec.Name)
	}
	r.specs = append(r.specs, spec)
	return nil
}

// checkSettings checks that newSettings returns a pointer to a struct whose keys are not
// common ones (those of the struct type common).
func checkSettings(driver, table string, newSettings func() any, common reflect.Type) error {
	v := newSettings()
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct || reflect.ValueOf(v).IsNil() {
		return fmt.Errorf("config: driver %q: %s settings must be a pointer to a struct, not %T", driver, table, v)
	}
	commonKeys := fieldsByKey(common)
	for k := range fieldsByKey(t.Elem()) {
		if _, ok := commonKeys[k]; ok {
			return fmt.Errorf("config: driver %q: %s settings declare the common key %q", driver, table, k)
		}
	}
	return nil
}

func (r *registry) lookup(name string) (DriverSpec, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	i := slices.IndexFunc(r.specs, func(s DriverSpec) bool { return s.Name == name })
	if i < 0 {
		return DriverSpec{}, false
	}
	return r.specs[i], true
}

func (r *registry) list() []DriverSpec {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clone(r.specs)
}

// choices lists the registered names for a message: "a", "a or b", "a, b or c".
func (r *registry) choices() string {
	var names []string
	for _, s := range r.list() {
		names = append(names, s.Name)
	}
	switch len(names) {
	case 0:
		return "no driver is registered"
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// otherHas reports whether a registered driver other than the one named this has key in its
// device (or, with tag, its tag) settings.
func (r *registry) otherHas(this, key string, tag bool) bool {
	for _, s := range r.list() {
		newSettings := s.NewDevice
		if tag {
			newSettings = s.NewTag
		}
		if _, ok := fieldsByKey(settingsType(newSettings))[key]; ok && s.Name != this {
			return true
		}
	}
	return false
}

// settingsType is the struct type of the settings newSettings returns.
func settingsType(newSettings func() any) reflect.Type {
	return reflect.TypeOf(newSettings()).Elem()
}

// Enabled returns the devices that use the driver name and are not disabled, in file order.
func (c *Config) Enabled(name string) []*Device {
	var out []*Device
	for i := range c.Devices {
		if d := &c.Devices[i]; d.Driver == name && !d.Disabled {
			out = append(out, d)
		}
	}
	return out
}
