package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/wellgate/wellgate/drivers/opcua"
)

// cmdBrowse prints an OPC UA server's certificate fingerprint and address space, or a tag
// map ready to paste (-toml DEVICE).
func cmdBrowse(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("browse", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o opcua.BrowseOptions
	fs.StringVar(&o.Endpoint, "endpoint", "", "server endpoint, such as opc.tcp://10.0.0.30:4840 (required)")
	fs.StringVar(&o.SecurityPolicy, "security-policy", "", "None (default), Basic128Rsa15, Basic256, Basic256Sha256, Aes128_Sha256_RsaOaep, Aes256_Sha256_RsaPss")
	fs.StringVar(&o.SecurityMode, "security-mode", "", "None, Sign or SignAndEncrypt")
	fs.StringVar(&o.Username, "username", "", "user name (with -password); sent only to a pinned server")
	fs.StringVar(&o.Password, "password", "", "password")
	fs.StringVar(&o.ServerFingerprint, "server-fingerprint", "", "the server certificate to trust (SHA256:…)")
	fs.StringVar(&o.Root, "root", "", "node to start from (default i=85, Objects)")
	fs.IntVar(&o.Depth, "depth", 0, "levels below the root (default 6)")
	fs.StringVar(&o.TOML, "toml", "", "print a [[device]] table of this name with its tags, ready to paste")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.Endpoint == "" {
		fmt.Fprintln(stderr, "wellgate browse: -endpoint is required")
		return 2
	}
	if err := opcua.Browse(ctx, o, stdout); err != nil {
		fmt.Fprintln(stderr, "wellgate browse:", err)
		return 1
	}
	return 0
}
