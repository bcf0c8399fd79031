package opcua

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	if addr := os.Getenv(childServerEnv); addr != "" {
		os.Exit(runChildServer(addr))
	}
	code := m.Run()
	if sharedServer != nil {
		sharedServer.close()
	}
	stopNodeServer()
	os.Exit(code)
}
