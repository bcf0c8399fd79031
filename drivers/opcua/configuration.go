package opcua

import (
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/wellgate/wellgate/config"
)

// The configuration's side of the driver: the keys of an opcua [[device]] table and of its
// [[device.tag]] tables, their defaults, their validation with lines (DeviceOptions.Check's
// rules, the one place they live) and the Options a loaded configuration builds the driver
// from.

// Name is the driver's name in a device's driver key.
const Name = "opcua"

// defaultDataDir is the configuration's default data_dir, used until the registry tells a
// driver the configured one (see dataDir).
const defaultDataDir = "/var/lib/wellgate"

func init() {
	config.RegisterDriver(config.DriverSpec{
		Name:      Name,
		NewDevice: func() any { return &deviceSettings{SecurityPolicy: "None", Mode: ModeSubscribe} },
		NewTag:    func() any { return &tagSettings{} },
		Validate:  validate,
		Build:     build,
	})
}

// deviceSettings are the keys of an opcua device beyond the common ones.
type deviceSettings struct {
	Endpoint          string `toml:"endpoint"`           // opc.tcp://host:port: required
	SecurityPolicy    string `toml:"security_policy"`    // None (default), Basic128Rsa15, Basic256, Basic256Sha256, Aes128_Sha256_RsaOaep, Aes256_Sha256_RsaPss
	SecurityMode      string `toml:"security_mode"`      // None, Sign, SignAndEncrypt (default with a policy)
	Username          string `toml:"username"`           // with password; absent: anonymous
	Password          string `toml:"password"`           //
	UserCertificate   string `toml:"user_certificate"`   // with user_key: certificate authentication
	UserKey           string `toml:"user_key"`           //
	ServerFingerprint string `toml:"server_fingerprint"` // SHA256:…, the server certificate to trust
	ServerCertificate string `toml:"server_certificate"` // or the certificate file to trust
	ClientCertificate string `toml:"client_certificate"` // with client_key; default: created in <data_dir>/pki
	ClientKey         string `toml:"client_key"`         //
	Mode              string `toml:"mode"`               // subscribe (default) or poll
}

// tagSettings are the keys of an OPC UA tag beyond the common ones.
type tagSettings struct {
	NodeID string `toml:"node_id"` // required: ns=2;s=…, i=…, g=…, b=…, nsu=URI;…
	Type   string `toml:"type"`    // optional: Boolean, Int8 … Double, String, DateTime, Bytes
}

// validate checks the driver's keys of devices (disabled ones too) and their tags, reporting
// each problem at its key's line. The common keys are the configuration's to check.
func validate(devs []*config.Device) config.Errors {
	var errs config.Errors
	for _, cd := range devs {
		o := deviceOptions(cd, "")
		for _, p := range o.check(false) {
			switch {
			case p.Tag < 0 && cd.Settings != nil:
				errs = append(errs, cd.Errorf(p.Key, "%s", p.Msg))
			case p.Tag >= 0 && cd.Tags[p.Tag].Settings != nil:
				errs = append(errs, cd.TagErrorf(&cd.Tags[p.Tag], p.Key, "%s", p.Msg))
			}
		}
	}
	return errs
}

// build makes the driver for the enabled devices of a loaded configuration.
func build(devs []*config.Device, log *slog.Logger) (config.BuiltDriver, error) {
	var opts Options
	for _, cd := range devs {
		dir := dataDir(cd)
		opts.Devices = append(opts.Devices, deviceOptions(cd, dir))
		if d, ok := any(cd).(interface{ DataDir() string }); ok && d.DataDir() != "" {
			opts.StateDir = filepath.Join(d.DataDir(), "opcua")
		}
	}
	d, err := New(opts, log)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// dataDir is the data directory of a configured device: the configured data_dir when the
// configuration tells (a DataDir method on config.Device), else the configuration's default.
// Learned tag types are kept only when the configuration tells.
func dataDir(cd *config.Device) string {
	if d, ok := any(cd).(interface{ DataDir() string }); ok && d.DataDir() != "" {
		return d.DataDir()
	}
	return defaultDataDir
}

// deviceOptions returns the options of a configured device; its client certificate pair is
// created in dir/pki unless configured. A device without settings (they had a problem, or the
// device was made in code) gets the driver's defaults.
func deviceOptions(cd *config.Device, dir string) DeviceOptions {
	s, ok := cd.Settings.(*deviceSettings)
	if !ok {
		s = &deviceSettings{SecurityPolicy: "None", Mode: ModeSubscribe}
	}
	o := DeviceOptions{
		Name: cd.Name, Endpoint: s.Endpoint, SecurityPolicy: s.SecurityPolicy, SecurityMode: s.SecurityMode,
		Username: s.Username, Password: s.Password, UserCertificate: s.UserCertificate, UserKey: s.UserKey,
		ServerFingerprint: s.ServerFingerprint, ServerCertificate: s.ServerCertificate,
		ClientCertificate: s.ClientCertificate, ClientKey: s.ClientKey, PKIDir: filepath.Join(dir, "pki"),
		Mode: s.Mode, PollSchedule: cd.PollSchedule, Interval: cd.PollInterval.D(), Timeout: cd.Timeout.D(), Where: where(cd.Errorf("", "")),
	}
	if dir == "" {
		o.PKIDir = "(the data directory)/pki" // validation only: the path is not used
	}
	for j := range cd.Tags {
		o.Tags = append(o.Tags, tagOptions(cd, &cd.Tags[j]))
	}
	return o
}

// tagOptions returns the options of a configured tag.
func tagOptions(cd *config.Device, ct *config.Tag) TagOptions {
	s, ok := ct.Settings.(*tagSettings)
	if !ok {
		s = &tagSettings{}
	}
	return TagOptions{
		Name: ct.Name, NodeID: s.NodeID, Type: s.Type, Deadband: ct.Deadband, Writable: ct.Writable,
		Min: ct.Min, Max: ct.Max, Units: ct.Units, Description: ct.Description,
		DeadbandPercent: ct.DeadbandPercent, MaxInterval: ct.MaxInterval.D(), Where: where(cd.TagErrorf(ct, "", "")),
	}
}

// where formats a configuration position as "file:line" for log lines.
func where(e *config.Error) string {
	switch {
	case e.File == "" && e.Line == 0:
		return ""
	case e.File == "":
		return fmt.Sprintf("line %d", e.Line)
	}
	return fmt.Sprintf("%s:%d", e.File, e.Line)
}
