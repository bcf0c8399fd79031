package opcua

import (
	"strings"
	"testing"

	"github.com/wellgate/wellgate/drivers"
)

// TestDevicesDescribeEndpointAndAddresses: the status page's Endpoint and Address columns
// say how each OPC UA device is reached and which node each tag reads, as configured.
func TestDevicesDescribeEndpointAndAddresses(t *testing.T) {
	fp := "SHA256:" + strings.Repeat("ab", 32)
	d, err := New(Options{Devices: []DeviceOptions{
		{Name: "Compressor PLC", Endpoint: "opc.tcp://10.0.0.30:4840", SecurityPolicy: "basic256sha256",
			ServerFingerprint: fp, PKIDir: t.TempDir(), Tags: []TagOptions{
				{Name: "Tank/Level", NodeID: "ns=2;s=Tank.Level", Type: "float"},
				{Name: "Tank/Temp", NodeID: "ns=2;i=1042"},
			}},
		{Name: "Flow Computer", Endpoint: "opc.tcp://fc.local:48010/UA/Flow", Mode: "Poll", Tags: []TagOptions{
			{Name: "Run/Flow", NodeID: "nsu=urn:flow;s=Run1.Flow", Type: "Double"},
		}},
		{Name: "Signed Only", Endpoint: "opc.tcp://10.0.0.31:4840", SecurityPolicy: "Basic256Sha256",
			SecurityMode: "Sign", ServerFingerprint: fp, PKIDir: t.TempDir(), Mode: "poll",
			Tags: []TagOptions{{Name: "X", NodeID: "ns=1;s=X"}}},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	devs := d.Devices()
	type want struct {
		endpoint string
		address  []string
	}
	wants := map[string]want{
		"Compressor PLC": {"opc.tcp://10.0.0.30:4840 Basic256Sha256 SignAndEncrypt subscribe",
			[]string{"ns=2;s=Tank.Level (Float)", "ns=2;i=1042"}},
		"Flow Computer": {"opc.tcp://fc.local:48010/UA/Flow None poll", []string{"nsu=urn:flow;s=Run1.Flow (Double)"}},
		"Signed Only":   {"opc.tcp://10.0.0.31:4840 Basic256Sha256 Sign poll", []string{"ns=1;s=X"}},
	}
	if len(devs) != len(wants) {
		t.Fatalf("%d devices, want %d", len(devs), len(wants))
	}
	for _, dev := range devs {
		w := wants[dev.Name]
		if dev.Driver != "opcua" || dev.Endpoint != w.endpoint {
			t.Errorf("device %q: driver %q, endpoint %q; want opcua, %q", dev.Name, dev.Driver, dev.Endpoint, w.endpoint)
		}
		if len(dev.Tags) != len(w.address) {
			t.Fatalf("device %q: %d tags, want %d", dev.Name, len(dev.Tags), len(w.address))
		}
		for i, tag := range dev.Tags {
			if tag.Address != w.address[i] {
				t.Errorf("device %q tag %q: address %q, want %q", dev.Name, tag.Name, tag.Address, w.address[i])
			}
		}
	}

	// A description is a copy: changing it does not change the next one.
	devs[0].Tags[0].Address = "changed"
	if got := d.Devices()[0].Tags[0]; got.Address != "ns=2;s=Tank.Level (Float)" || got.Type != drivers.Float {
		t.Errorf("second description %+v", got)
	}
}
