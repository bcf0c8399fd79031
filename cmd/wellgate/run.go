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
	"strings"
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
  simulate [-devices N] [-opcua K] [-tags M] [-change P] [-listen HOST] [-port N]
          [-interval D] [-schedule S] [-config FILE] [-data DIR] [-upstream URL]
          [-broker ADDR] [-web ADDR]
                                 serve simulated Modbus TCP devices and OPC UA servers
                                 and write the gateway config that polls them
  browse  -endpoint URL [-security-policy P -security-mode M -username U -password P]
          [-server-fingerprint F] [-root NODE] [-depth N] [-toml DEVICE]
                                 print an OPC UA server's fingerprint and address space
  passwd                         print the bcrypt hash of a password (asked, or one line
                                 of stdin) for a password_hash key
  version                        print the version
`

// run dispatches a command and returns the process exit code. SIGINT and SIGTERM stop a
// running gateway; SIGHUP reloads its configuration file.
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
	case "simulate":
		return cmdSimulate(ctx, args[1:], stdout, stderr)
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

// runConfig loads the configuration and runs the gateway until ctx ends. SIGHUP reloads the
// file (reload).
func runConfig(ctx context.Context, path string, stderr io.Writer) int {
	setSteadyGC()
	g, log, err := build(path, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	hup := hangupsOf(ctx)
	defer hup.stop()
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	for {
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				log.Error("wellgate stopped", "err", err)
				return 1
			}
			return 0
		case <-hup.c:
			hup.done(reload(g, path, log))
		}
	}
}

// build loads the configuration and builds the gateway, under the start-up GC percent
// (startupGC); log is the gateway's logger, at the file's log level.
func build(path string, stderr io.Writer) (*gateway.Gateway, *slog.Logger, error) {
	defer startupGC()()
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	log := newLogger(cfg.Gateway.LogLevel, stderr)
	g, err := gateway.New(cfg, log, buildVersion())
	if err != nil {
		return nil, nil, err
	}
	return g, log, nil
}

// reload re-reads the configuration file on SIGHUP. A file that `check` refuses is refused
// with the same messages, each problem logged with its FILE:LINE, and the running
// configuration stays; a valid one has its [[device]] changes applied by Gateway.Reload.
func reload(g *gateway.Gateway, path string, log *slog.Logger) error {
	log.Info("SIGHUP: reloading the configuration", "file", path)
	defer startupGC()()
	if _, _, err := checkConfig(path); err != nil {
		log.Error("reload refused: the configuration has problems; the running configuration stays", "file", path)
		for _, line := range strings.Split(err.Error(), "\n") {
			log.Error("reload refused", "problem", line)
		}
		return err
	}
	cfg, err := config.Load(path)
	if err == nil {
		err = g.Reload(cfg)
	}
	if err != nil {
		log.Error("reload failed; the running configuration stays", "err", err)
	}
	return err
}

// checkConfig loads and checks a configuration file as `check` does: the file, then every
// driver's build and the parts' options (gateway.New, which opens nothing).
func checkConfig(path string) (*config.Config, *gateway.Gateway, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	g, err := gateway.New(cfg, slog.New(slog.DiscardHandler), buildVersion())
	if err != nil {
		return nil, nil, err
	}
	return cfg, g, nil
}

// hangups is where SIGHUP arrives and who hears how each reload ended.
type hangups struct {
	c    <-chan os.Signal
	done func(error)
	stop func()
}

type hangupsKey struct{}

// withHangups makes runConfig take its SIGHUPs from c and report each reload's result to done,
// instead of the process's signals: for tests, which run in one process.
func withHangups(ctx context.Context, c <-chan os.Signal, done func(error)) context.Context {
	return context.WithValue(ctx, hangupsKey{}, hangups{c: c, done: done, stop: func() {}})
}

// hangupsOf returns the hangups of ctx (withHangups), else the process's SIGHUP.
func hangupsOf(ctx context.Context) hangups {
	if h, ok := ctx.Value(hangupsKey{}).(hangups); ok {
		return h
	}
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGHUP)
	return hangups{c: c, done: func(error) {}, stop: func() { signal.Stop(c) }}
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "/etc/wellgate/wellgate.toml", "configuration file")
	plan := fs.Bool("plan", false, "print the drivers' request plans")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	restore := startupGC()
	_, g, err := checkConfig(*path)
	restore()
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
