package gateway

import (
	"github.com/wellgate/wellgate/broker"
)

// brokerOptions are the embedded broker's options from the configuration. The gateway's own
// edge node namespace is protected: nobody but the gateway publishes births, data or deaths
// under it, and its commands are audited.
func (g *Gateway) brokerOptions() broker.Options {
	b := g.cfg.Broker
	o := broker.Options{
		Listen: b.Listen, TLSListen: b.TLSListen, WSListen: b.WSListen,
		TLSCertFile: b.TLSCertFile, TLSKeyFile: b.TLSKeyFile, TLSClientCAFile: b.TLSClientCAFile,
		DataDir: g.cfg.Gateway.DataDir, Logger: g.log,
		AllowAnonymous: b.AllowAnonymous,
		Anonymous:      broker.Access{Read: b.Anonymous.Read, Write: b.Anonymous.Write},
		EdgeNode:       broker.EdgeNode{Group: g.cfg.Sparkplug.GroupID, Node: g.cfg.Sparkplug.EdgeNodeID},
		MaxClients:     b.MaxClients, MaxPacketSize: int(b.MaxPacketSize), SessionExpiry: b.SessionExpiry.D(),
	}
	for _, u := range b.Users {
		o.Users = append(o.Users, broker.User{Name: u.Name, PasswordHash: u.PasswordHash,
			Access: broker.Access{Read: u.Read, Write: u.Write}})
	}
	return o
}

// Warnings are what `check` points out in a valid configuration: a broker listener off
// loopback where anonymous clients may write, a status page open to the network without users
// or TLS. At start the broker's are logged by Run and the page logs its own.
func (g *Gateway) Warnings() []string {
	ws := g.brokerWarnings()
	if g.cfg.Web.Enabled {
		ws = append(ws, g.webOptions().Warnings()...)
	}
	return ws
}

func (g *Gateway) brokerWarnings() []string {
	if !g.cfg.Broker.Enabled {
		return nil
	}
	return g.brokerOptions().Warnings()
}
