package sim

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// FleetConfig is the gateway configuration that polls a fleet.
type FleetConfig struct {
	DataDir  string        // [gateway] data_dir
	Broker   string        // [broker] listen; "off": enabled = false
	Web      string        // [web] listen; "off": enabled = false
	Upstream string        // when set, [upstream] servers = [Upstream]
	Interval time.Duration // every device's poll_interval
	Schedule string        // every device's poll_schedule: "clock" or "start"
	Tags     int           // per device
	Modbus   []string      // host:port of the Modbus devices: PLC001…
	OPCUA    []string      // opc.tcp:// endpoints of the OPC UA servers: OPCUA01…
}

// Group is the Sparkplug group_id of the configuration WriteFleetConfig writes, for the
// subscribers that measure it.
const Group = "Simulated"

// Off is the FleetConfig value of Broker and Web that disables the part.
const Off = "off"

// WriteFleetConfig writes c to path, through a temporary file renamed into place so that a
// reader never sees half a file.
func WriteFleetConfig(path string, c FleetConfig) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("sim: write config: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	w := bufio.NewWriter(tmp)
	c.write(w)
	if err = w.Flush(); err != nil {
		return fmt.Errorf("sim: write config: %w", err)
	}
	if err = tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("sim: write config: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("sim: write config: %w", err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("sim: write config: %w", err)
	}
	return nil
}

// write writes the configuration's TOML to w (a bufio.Writer: its errors stick until Flush).
func (c FleetConfig) write(w io.Writer) {
	fmt.Fprintf(w, "# Written by `wellgate simulate`: %d Modbus TCP devices and %d OPC UA servers of %d tags each.\n\n",
		len(c.Modbus), len(c.OPCUA), c.Tags)
	fmt.Fprintf(w, "[gateway]\ndata_dir = %s\nlog_level = \"warn\"\n\n", tomlString(c.DataDir))
	fmt.Fprintf(w, "[sparkplug]\ngroup_id = %s\nedge_node_id = \"Gateway\"\naliases = true\n\n", tomlString(Group))
	part(w, "broker", c.Broker)
	part(w, "web", c.Web)
	if c.Upstream != "" {
		fmt.Fprintf(w, "[upstream]\nservers = [%s]\n\n", tomlString(c.Upstream))
	}
	common := fmt.Sprintf("poll_interval = %s\npoll_schedule = %s\ntimeout = \"1s\"\n",
		tomlString(c.Interval.String()), tomlString(c.Schedule))
	for i, addr := range c.Modbus {
		fmt.Fprintf(w, "[[device]]\nname = \"PLC%03d\"\ndriver = \"modbus-tcp\"\naddress = %s\n%s",
			i+1, tomlString(addr), common)
		for j := range c.Tags {
			fmt.Fprintf(w, "\n  [[device.tag]]\n  name = %q\n  address = \"%d\"\n  type = \"int16\"\n  writable = true\n",
				TagName(j), 40001+j)
		}
		fmt.Fprintln(w)
	}
	for k, endpoint := range c.OPCUA {
		fmt.Fprintf(w, "[[device]]\nname = \"OPCUA%02d\"\ndriver = \"opcua\"\nendpoint = %s\n"+
			"security_policy = \"None\"\nmode = \"subscribe\"\n%s", k+1, tomlString(endpoint), common)
		for j := range c.Tags {
			fmt.Fprintf(w, "\n  [[device.tag]]\n  name = %q\n  node_id = \"nsu=%s;s=%s\"\n  type = \"Int16\"\n  writable = true\n",
				TagName(j), OPCUANamespace, TagName(j))
		}
		fmt.Fprintln(w)
	}
}

// part writes a [broker] or [web] section listening on listen, or disabled.
func part(w io.Writer, name, listen string) {
	if listen == Off {
		fmt.Fprintf(w, "[%s]\nenabled = false\n\n", name)
		return
	}
	fmt.Fprintf(w, "[%s]\nlisten = %s\n\n", name, tomlString(listen))
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
