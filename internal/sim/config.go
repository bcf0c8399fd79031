package sim

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"
)

//go:embed demo.toml
var demoTOML string

// DemoConfig are the addresses the demo configuration is filled in with.
type DemoConfig struct {
	DataDir    string
	MQTTListen string
	WebListen  string
	ModbusAddr string
}

// WriteDemoConfig writes the demo gateway configuration to DataDir/demo.toml and returns its
// path, so that the demo goes through the same loader, and the same messages, as a real site.
func WriteDemoConfig(c DemoConfig) (string, error) {
	t, err := template.New("demo.toml").Option("missingkey=error").Parse(demoTOML)
	if err != nil {
		return "", fmt.Errorf("sim: demo config template: %w", err)
	}
	esc := func(s string) string { return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) }
	quoted := DemoConfig{esc(c.DataDir), esc(c.MQTTListen), esc(c.WebListen), esc(c.ModbusAddr)}
	var b strings.Builder
	if err := t.Execute(&b, quoted); err != nil {
		return "", fmt.Errorf("sim: demo config: %w", err)
	}
	if err := os.MkdirAll(c.DataDir, 0o755); err != nil {
		return "", fmt.Errorf("sim: data dir: %w", err)
	}
	path := filepath.Join(c.DataDir, "demo.toml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return "", fmt.Errorf("sim: write demo config: %w", err)
	}
	return path, nil
}
