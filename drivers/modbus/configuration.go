package modbus

import (
	"errors"
	"log/slog"
	"slices"
	"strconv"

	"github.com/wellgate/wellgate/config"
	"github.com/wellgate/wellgate/drivers"
)

// The configuration's side of the driver: the keys of a modbus-tcp or modbus-rtu [[device]]
// table and of its [[device.tag]] tables, their defaults, their validation with lines, and
// the Options a loaded configuration builds the driver from. The rules themselves are
// newDevice's and newTag's, which New applies too.

func init() {
	for _, name := range []string{NameTCP, NameRTU} {
		config.RegisterDriver(config.DriverSpec{
			Name:      name,
			NewDevice: func() any { return newSettings(name) },
			NewTag:    func() any { return &tagSettings{} },
			Validate:  validate,
			Build:     build,
		})
	}
}

// modbusSettings are the device keys Modbus TCP and RTU share.
type modbusSettings struct {
	ByteOrder           string          `toml:"byte_order"`            // ABCD (default), CDAB, BADC, DCBA
	MaxRegisters        int             `toml:"max_registers"`         // per read, 1…125, default 125
	MaxBits             int             `toml:"max_bits"`              // per read, 1…2000, default 2000
	MaxGap              int             `toml:"max_gap"`               // unused registers a merged read may span, default 0
	ZeroBased           bool            `toml:"zero_based"`            // "40000" is offset 0; default false
	WriteSingleRegister string          `toml:"write_single_register"` // "fc6" (default) or "fc16"
	WriteCoil           string          `toml:"write_coil"`            // "fc5" (default) or "fc15"
	MaxBackoff          config.Duration `toml:"max_backoff"`           // quarantine probes at most this far apart, default 10s
}

// tcpSettings are the keys of a modbus-tcp device beyond the common ones.
type tcpSettings struct {
	Address string `toml:"address"` // host or host:port (port 502 when left out)
	UnitID  int    `toml:"unit_id"` // 0…247, default 1
	modbusSettings
}

// rtuSettings are the keys of a modbus-rtu device beyond the common ones.
type rtuSettings struct {
	Port     string `toml:"port"`      // serial device, e.g. /dev/ttyUSB0: required
	Baud     int    `toml:"baud"`      // default 9600
	DataBits int    `toml:"data_bits"` // default 8
	Parity   string `toml:"parity"`    // N, E or O: required (no silent default)
	StopBits int    `toml:"stop_bits"` // default 1
	UnitID   *int   `toml:"unit_id"`   // 1…247: required
	// Silence on the line beyond the computed 3.5 characters, for radios and slow converters.
	InterFrameDelay config.Duration `toml:"inter_frame_delay"` // default 0s: 3.5 characters
	TurnaroundDelay config.Duration `toml:"turnaround_delay"`  // default 0s
	modbusSettings
}

// tagSettings are the keys of a Modbus tag beyond the common ones.
type tagSettings struct {
	Address   tagAddress `toml:"address"`    // see the package comment
	Type      string     `toml:"type"`       // bool, int16, … string; "" picks by table
	ByteOrder string     `toml:"byte_order"` // overrides the device's
	Length    int        `toml:"length"`     // registers, for strings
	Scale     *float64   `toml:"scale"`      // value = raw*scale + offset, published as a Double
	Offset    *float64   `toml:"offset"`
}

// newSettings returns the device settings of driver name with its defaults: every default of
// a Modbus device is here.
func newSettings(name string) any {
	common := modbusSettings{ByteOrder: "ABCD", MaxRegisters: maxReadRegisters, MaxBits: maxReadBits,
		WriteSingleRegister: DefaultWriteSingleRegister, WriteCoil: DefaultWriteCoil,
		MaxBackoff: config.Duration(DefaultMaxBackoff)}
	if name == NameRTU {
		return &rtuSettings{Baud: 9600, DataBits: 8, StopBits: 1, modbusSettings: common}
	}
	return &tcpSettings{UnitID: 1, modbusSettings: common}
}

// tagAddress is a tag's address as written in the file. TOML may give it as a string
// ("40001", "hr:0") or an integer (40001); either way it is kept as text for parseAddress.
type tagAddress string

// UnmarshalTOML accepts a string or an integer; an integer is kept as its decimal text.
func (a *tagAddress) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		*a = tagAddress(v)
		return nil
	case int64:
		*a = tagAddress(strconv.FormatInt(v, 10))
		return nil
	}
	return errors.New("an address must be a string such as \"40001\" or \"hr:0\", or an integer")
}

// validate checks the Modbus part of devices (of one driver, disabled ones too) and their tags
// with newDevice's and newTag's rules, reporting each problem at its key's line, and checks
// that devices sharing a serial port agree on its settings.
func validate(devs []*config.Device) config.Errors {
	var errs config.Errors
	discard := slog.New(slog.DiscardHandler)
	buses := map[string]*device{} // the first device on each serial port
	// One tag, its description and its extras, checked in place of each configured tag in
	// turn: validating allocates nothing per tag but what it reports.
	var (
		info drivers.TagInfo
		t    = tag{info: &info}
		x    tagExtra
	)
	for _, cd := range devs {
		o, unitMissing := deviceSettings(cd)
		dev, ps := newDevice(&o, discard)
		if cd.Settings != nil {
			for _, p := range ps {
				if p.key == "unit_id" && unitMissing {
					p.msg = "unit_id is required for modbus-rtu: 1 to 247"
				}
				errs = append(errs, cd.Errorf(p.key, "%s", p.msg))
			}
			if first, ok := buses[dev.endpoint]; len(ps) == 0 && ok {
				if key, msg := dev.sharesBusWith(first); msg != "" {
					errs = append(errs, cd.Errorf(key, "%s", msg))
				}
			} else if len(ps) == 0 {
				buses[dev.endpoint] = dev
			}
		}
		for j := range cd.Tags {
			if ct := &cd.Tags[j]; ct.Settings != nil {
				to := tagOptions(ct)
				ps, _ := newTag(&to, dev, &t, &x)
				for _, p := range ps {
					errs = append(errs, cd.TagErrorf(ct, p.key, "%s", p.msg))
				}
			}
		}
	}
	return errs
}

// build makes the driver for the enabled devices of a loaded configuration.
func build(devs []*config.Device, log *slog.Logger) (config.BuiltDriver, error) {
	// Each device's options are made when the device is built and dropped after, so that a
	// 40,000-tag file never has every tag's options at once; its tags' options reuse one
	// slice (buildDevice keeps none of them, only the values they hold).
	var tags []TagOptions
	d, err := newDriver(len(devs), func(i int) *DeviceOptions {
		o, _ := deviceSettings(devs[i])
		tags = appendTagOptions(tags[:0], devs[i])
		o.Tags = tags
		return &o
	}, log)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// deviceOptions returns the options of a configured device, its tags' included, and whether
// its unit id was left out (which only an RTU device may not do).
func deviceOptions(cd *config.Device) (DeviceOptions, bool) {
	o, unitMissing := deviceSettings(cd)
	o.Tags = appendTagOptions(nil, cd)
	return o, unitMissing
}

// appendTagOptions appends the options of the device's tags to tags.
func appendTagOptions(tags []TagOptions, cd *config.Device) []TagOptions {
	tags = slices.Grow(tags, len(cd.Tags))
	for j := range cd.Tags {
		tags = append(tags, tagOptions(&cd.Tags[j]))
	}
	return tags
}

// deviceSettings returns the options of a configured device but its tags, and whether its
// unit id was left out. A device without settings (they had a problem, or the device was made
// in code) gets its driver's defaults.
func deviceSettings(cd *config.Device) (DeviceOptions, bool) {
	o := DeviceOptions{Name: cd.Name, PollInterval: cd.PollInterval.D(), PollSchedule: cd.PollSchedule, Timeout: cd.Timeout.D()}
	settings := cd.Settings
	if settings == nil {
		settings = newSettings(cd.Driver)
	}
	var common modbusSettings
	unitMissing := false
	switch s := settings.(type) {
	case *tcpSettings:
		o.Address, o.UnitID, common = s.Address, s.UnitID, s.modbusSettings
	case *rtuSettings:
		o.Serial = &SerialOptions{Port: s.Port, Baud: s.Baud, DataBits: s.DataBits, Parity: s.Parity, StopBits: s.StopBits,
			InterFrameDelay: s.InterFrameDelay.D(), TurnaroundDelay: s.TurnaroundDelay.D()}
		if s.UnitID != nil {
			o.UnitID = *s.UnitID
		}
		unitMissing, common = s.UnitID == nil, s.modbusSettings
	}
	o.ByteOrder, o.MaxRegisters, o.MaxBits, o.MaxGap = common.ByteOrder, common.MaxRegisters, common.MaxBits, common.MaxGap
	o.ZeroBased, o.WriteSingleRegister, o.WriteCoil = common.ZeroBased, common.WriteSingleRegister, common.WriteCoil
	o.MaxBackoff = common.MaxBackoff.D()
	return o, unitMissing
}

// tagOptions returns the options of a configured tag.
func tagOptions(ct *config.Tag) TagOptions {
	s, ok := ct.Settings.(*tagSettings)
	if !ok {
		s = &tagSettings{}
	}
	return TagOptions{
		Name: ct.Name, Address: string(s.Address), Type: s.Type, ByteOrder: s.ByteOrder, Length: s.Length,
		Scale: s.Scale, Offset: s.Offset, Units: ct.Units, Description: ct.Description, Writable: ct.Writable,
		Min: ct.Min, Max: ct.Max, Deadband: ct.Deadband, DeadbandPercent: ct.DeadbandPercent,
		MaxInterval: ct.MaxInterval.D(),
	}
}
