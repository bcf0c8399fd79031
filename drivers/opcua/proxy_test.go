package opcua

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wellgate/wellgate/internal/peers"
)

// proxy is a TCP proxy between the driver and a server, to cut connections, refuse new ones
// or black-hole them (bytes accepted and dropped) while the server keeps running.
type proxy struct {
	t      testing.TB
	addr   string
	target string

	mu        sync.Mutex
	ln        net.Listener
	conns     map[net.Conn]bool
	blackhole bool
}

// newProxy returns a proxy to target on a free port; it listens when listening is set.
func newProxy(t testing.TB, target string, listening bool) *proxy {
	p := &proxy{t: t, addr: peers.FreePort(t), target: target, conns: map[net.Conn]bool{}}
	if listening {
		p.listen()
	}
	t.Cleanup(func() { p.refuse(); p.cut() })
	return p
}

// url is the proxy's endpoint URL.
func (p *proxy) url() string { return "opc.tcp://" + p.addr }

// listen starts accepting connections (again) on the proxy's port.
func (p *proxy) listen() {
	var ln net.Listener
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; {
		ln, err = net.Listen("tcp", p.addr)
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // the port is still held by the closed listener
	}
	if err != nil {
		p.t.Fatalf("proxy listen: %v", err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go p.accept(ln)
}

func (p *proxy) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[s] = true, true
		p.mu.Unlock()
		go p.pipe(c, s)
		go p.pipe(s, c)
	}
}

// pipe copies from one side to the other, dropping the bytes while black-holed.
func (p *proxy) pipe(from, to net.Conn) {
	defer from.Close()
	defer to.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := from.Read(buf)
		if n > 0 {
			p.mu.Lock()
			drop := p.blackhole
			p.mu.Unlock()
			if !drop {
				if _, werr := to.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return
			}
			return
		}
	}
}

// refuse stops accepting: new connections are refused.
func (p *proxy) refuse() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
}

// cut closes every proxied connection, on both sides.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// setBlackhole makes the proxy drop (or forward again) every byte of every connection.
func (p *proxy) setBlackhole(on bool) {
	p.mu.Lock()
	p.blackhole = on
	p.mu.Unlock()
}
