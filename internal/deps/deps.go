// Package deps pins the modules the gateway is built on until the code that uses them lands.
package deps

import (
	_ "github.com/BurntSushi/toml"
	_ "github.com/eclipse/paho.mqtt.golang"
	_ "github.com/goburrow/modbus"
	_ "github.com/goburrow/serial"
	_ "github.com/mochi-mqtt/server/v2"
	_ "github.com/mochi-mqtt/server/v2/hooks/storage/pebble"
	_ "github.com/simonvetter/modbus"
	_ "golang.org/x/sync/errgroup"
	_ "google.golang.org/protobuf/encoding/protowire"
)
