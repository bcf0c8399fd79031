package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/wellgate/wellgate/config"
	"github.com/wellgate/wellgate/gateway"
	"github.com/wellgate/wellgate/internal/sim"
)

const usage = `usage: wellgate <command> [flags]

commands:
  run     -config FILE           run the gateway
  check   -config FILE [-plan]   validate a configuration (exit 0 valid, 1 invalid)
  demo    [-mqtt-listen ADDR] [-web-listen ADDR] [-data-dir DIR]
                                 run the gateway against a built-in simulated wellsite
  browse  -endpoint URL [-security-policy P -security-mode M -username U -password P]
          [-server-fingerprint F] [-root NODE] [-depth N] [-toml DEVICE]
                                 print an OPC UA server's fingerprint and address space
  passwd                         print the bcrypt hash of a password (asked, or one line
                                 of stdin) for a password_hash key
  version                        print the version
`

// run dispatches a command and returns the process exit code. SIGINT and SIGTERM stop a
// running gateway.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runContext(ctx, args, stdout, stderr)
}

// runContext dispatches a command; a running gateway stops when ctx ends.
func runContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:], stderr)
	case "check":
		return cmdCheck(args[1:], stdout, stderr)
	case "demo":
		return cmdDemo(ctx, args[1:], stderr)
	case "browse":
		return cmdBrowse(ctx, args[1:], stdout, stderr)
	case "passwd":
		return cmdPasswd(os.Stdin, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, versionLine())
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "wellgate: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func cmdRun(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "/etc/wellgate/wellgate.toml", "configuration file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	return runConfig(ctx, *path, stderr)
}

// runConfig loads the configuration and runs the gateway until ctx ends.
func runConfig(ctx context.Context, path string, stderr io.Writer) int {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	log := newLogger(cfg.Gateway.LogLevel, stderr)
	g, err := gateway.New(cfg, log, buildVersion())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if err := g.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("wellgate stopped", "err", err)
		return 1
	}
	return 0
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "/etc/wellgate/wellgate.toml", "configuration file")
	plan := fs.Bool("plan", false, "print the drivers' request plans")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	g, err := gateway.New(cfg, slog.New(slog.DiscardHandler), buildVersion())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if *plan {
		g.WritePlan(stdout)
	}
	tags := 0
	for _, d := range g.Devices() {
		tags += len(d.Tags)
	}
	for _, w := range g.Warnings() {
		fmt.Fprintf(stdout, "%s: warning: %s\n", *path, w)
	}
	fmt.Fprintf(stdout, "%s: ok (%d devices, %d tags)\n", *path, len(g.Devices()), tags)
	return 0
}

func cmdDemo(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mqttListen := fs.String("mqtt-listen", "127.0.0.1:1883", "embedded MQTT broker address")
	webListen := fs.String("web-listen", "127.0.0.1:8080", "status page address")
	dataDir := fs.String("data-dir", filepath.Join(os.TempDir(), "wellgate-demo"), "data directory")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	site, err := sim.Start("127.0.0.1:0", time.Second)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer site.Close()
	path, err := sim.WriteDemoConfig(sim.DemoConfig{DataDir: *dataDir, MQTTListen: *mqttListen,
		WebListen: *webListen, ModbusAddr: site.Addr()})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stderr, "wellgate demo: simulated wellhead RTU on %s (Modbus TCP)\n"+
		"  status page  http://%s/\n  MQTT         %s (try: mosquitto_sub -h %s -p %s -t 'spBv1.0/#' -v)\n"+
		"  config       %s\n", site.Addr(), *webListen, *mqttListen,
		hostOf(*mqttListen), portOf(*mqttListen), path)
	return runConfig(ctx, path, stderr)
}

func hostOf(addr string) string { h, _, _ := net.SplitHostPort(addr); return h }
func portOf(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }
