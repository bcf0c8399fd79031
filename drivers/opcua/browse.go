package opcua

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"

	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/internal/clock"
	"github.com/wellgate/wellgate/internal/logx"
)

// BrowseOptions says which server to browse, how, and how to print what is found.
type BrowseOptions struct {
	Endpoint                     string
	SecurityPolicy, SecurityMode string // as DeviceOptions; None by default
	Username, Password           string
	UserCertificate, UserKey     string
	// ServerFingerprint pins the server certificate. Browsing a secured endpoint without it is
	// allowed anonymously (the fingerprint is printed first, to be pinned); credentials are
	// sent only to a pinned server.
	ServerFingerprint            string
	ClientCertificate, ClientKey string // files; without them a throwaway certificate is used
	Root                         string // node id to start from; default i=85 (Objects)
	Depth                        int    // levels below Root; default 6
	MaxNodes                     int    // nodes visited at most; default 5000
	// TOML, when set, is a device name: the output is a [[device]] table of that name with a
	// [[device.tag]] entry per variable, ready to paste, instead of a table.
	TOML    string
	Timeout time.Duration // per request; default 5s
}

// browsed is one variable found by Browse.
type browsed struct {
	id       *ua.NodeID
	path     []string // browse names from the root down
	dataType string
	builtin  ua.TypeID // 0 when the data type is not a built-in one
	access   byte
	value    string
	array    bool
	status   ua.StatusCode
}

// Browse connects to a server, prints its certificate's fingerprint and then the variables
// below Root (node id, browse path, data type, access level, current value) as a table, or as
// a [[device]] table with [[device.tag]] entries (names from the browse paths, types from
// the data types, writable from the access levels) when TOML names a device.
func Browse(ctx context.Context, o BrowseOptions, w io.Writer) error {
	o = o.withDefaults()
	dev, err := browseDevice(o)
	if err != nil {
		return err
	}
	ectx, cancel := context.WithTimeout(ctx, o.Timeout)
	eps, err := opcua.GetEndpoints(ectx, o.Endpoint, opcua.DialTimeout(o.Timeout), opcua.RequestTimeout(o.Timeout))
	cancel()
	if err != nil {
		return fmt.Errorf("getting endpoints: %w", err)
	}
	ep, err := pickEndpoint(eps, o.Endpoint, dev.policy, dev.mode)
	if err != nil {
		return err
	}
	fingerprint := "none (the endpoint sends no certificate)"
	if len(ep.ServerCertificate) > 0 {
		fingerprint = Fingerprint(ep.ServerCertificate)
	}
	fmt.Fprintf(w, "# server certificate: %s\n", fingerprint)
	if err := checkBrowsePin(o, dev.policy, ep); err != nil {
		return err
	}
	c, err := dev.browseConn(ctx, ep, o)
	if err != nil {
		return err
	}
	defer c.close(o.Timeout, true)
	vars, note, err := c.walk(ctx, o)
	if err != nil {
		return err
	}
	if err := c.describe(ctx, vars); err != nil {
		return err
	}
	if o.TOML != "" {
		writeTOML(w, o, dev, fingerprint, vars, c.client.Namespaces())
	} else {
		writeTable(w, vars)
	}
	if note != "" {
		fmt.Fprintf(w, "# %s\n", note)
	}
	return nil
}

func (o BrowseOptions) withDefaults() BrowseOptions {
	if o.Root == "" {
		o.Root = "i=85"
	}
	if o.Depth <= 0 {
		o.Depth = 6
	}
	if o.MaxNodes <= 0 {
		o.MaxNodes = 5000
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	return o
}

// browseDevice checks the options as a device's and returns a device to browse with.
func browseDevice(o BrowseOptions) (*device, error) {
	do := DeviceOptions{Name: "browse", Endpoint: o.Endpoint, SecurityPolicy: o.SecurityPolicy, SecurityMode: o.SecurityMode,
		Username: o.Username, Password: o.Password, UserCertificate: o.UserCertificate, UserKey: o.UserKey,
		ClientCertificate: o.ClientCertificate, ClientKey: o.ClientKey, ServerFingerprint: o.ServerFingerprint,
		PKIDir: "(a throwaway certificate)", Timeout: o.Timeout}
	var msgs []string
	for _, p := range do.Check() {
		msgs = append(msgs, p.Msg)
	}
	if _, err := ParseNodeID(o.Root); err != nil {
		msgs = append(msgs, "root: "+err.Error())
	}
	if len(msgs) > 0 {
		return nil, errors.New(strings.Join(msgs, "; "))
	}
	log := slog.New(slog.DiscardHandler)
	drv := &Driver{log: log, clock: clock.Real, types: loadTypeCache("", log), limit: logx.NewLimiter(time.Minute)}
	return newDevice(drv, do.withDefaults()), nil
}

// checkBrowsePin refuses a secured server whose certificate is not the pinned one, and one
// not pinned at all when credentials would be sent to it.
func checkBrowsePin(o BrowseOptions, policy string, ep *ua.EndpointDescription) error {
	if policy == ua.SecurityPolicyURINone {
		return nil
	}
	fp := Fingerprint(ep.ServerCertificate)
	if o.ServerFingerprint == "" {
		if o.Username != "" || o.UserCertificate != "" {
			return fmt.Errorf("the server certificate is not pinned: check %s and pass it as the server fingerprint to send credentials", fp)
		}
		return nil
	}
	p, err := loadPins(o.ServerFingerprint, "")
	if err != nil {
		return err
	}
	if !p.trusts(ep.ServerCertificate) {
		return &UntrustedError{Fingerprint: fp}
	}
	return nil
}

// browseConn opens a session for browsing.
func (d *device) browseConn(ctx context.Context, ep *ua.EndpointDescription, o BrowseOptions) (*conn, error) {
	var client *identity
	if d.policy != ua.SecurityPolicyURINone || o.UserCertificate != "" {
		if o.ClientCertificate != "" {
			id, _, err := d.drv.ids.client(o.ClientCertificate, o.ClientKey, "")
			if err != nil {
				return nil, err
			}
			client = &id
		} else {
			cert, key, err := newApplicationCertificate("wellgate browse", applicationURI())
			if err != nil {
				return nil, err
			}
			client = &identity{cert: cert, key: key}
		}
	}
	opts, err := sessionOptions(ep, d.opts.Timeout, "wellgate browse", client,
		userAuth{o.Username, o.Password, o.UserCertificate, o.UserKey})
	if err != nil {
		return nil, err
	}
	c := &conn{d: d, stop: make(chan struct{}), lost: make(chan struct{})}
	if c.client, err = opcua.NewClient(o.Endpoint, opts...); err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 2*d.opts.Timeout)
	defer cancel()
	if err := c.client.Connect(cctx); err != nil {
		c.close(d.opts.Timeout, false)
		return nil, fmt.Errorf("connecting: %w", err)
	}
	if err := c.readLimits(ctx); err != nil {
		c.close(d.opts.Timeout, true)
		return nil, fmt.Errorf("reading the operation limits: %w", err)
	}
	return c, nil
}

// walk visits the hierarchy below the root, level by level, browsing as many nodes per
// request as MaxNodesPerBrowse allows, and returns the variables found. Below the Objects
// folder the standard nodes (namespace 0: the Server object, Aliases …) are left out; browse
// from one of them (i=2253 is Server) to see it.
func (c *conn) walk(ctx context.Context, o BrowseOptions) ([]*browsed, string, error) {
	rootID, _ := ParseNodeID(o.Root)
	root, err := rootID.resolve(c.client.Namespaces())
	if err != nil {
		return nil, "", err
	}
	type node struct {
		id   *ua.NodeID
		path []string
	}
	seen := map[string]bool{root.String(): true}
	level := []node{{id: root}}
	var vars []*browsed
	note := ""
	for depth := 0; depth < o.Depth && len(level) > 0; depth++ {
		var next []node
		for start := 0; start < len(level); start += max(c.lim.browse, 1) {
			batch := level[start:min(start+max(c.lim.browse, 1), len(level))]
			ids := make([]*ua.NodeID, len(batch))
			for i, n := range batch {
				ids[i] = n.id
			}
			refs, err := c.browseRefs(ctx, ids)
			if err != nil {
				return nil, "", err
			}
			for i, n := range batch {
				for _, r := range refs[i] {
					if r.NodeID == nil || r.NodeID.ServerIndex != 0 || r.NodeID.NodeID == nil {
						continue
					}
					child := r.NodeID.NodeID
					if seen[child.String()] || (root.String() == "i=85" && child.Namespace() == 0) {
						continue
					}
					if len(seen) >= o.MaxNodes {
						note = fmt.Sprintf("stopped after %d nodes: narrow the browse with a deeper root or a smaller depth", o.MaxNodes)
						return vars, note, nil
					}
					seen[child.String()] = true
					name := child.String()
					if r.BrowseName != nil && r.BrowseName.Name != "" {
						name = r.BrowseName.Name
					}
					path := append(append([]string(nil), n.path...), name)
					if r.NodeClass == ua.NodeClassVariable {
						vars = append(vars, &browsed{id: child, path: path})
					}
					next = append(next, node{id: child, path: path})
				}
			}
		}
		level = next
	}
	return vars, note, nil
}

// browseRefs returns the forward hierarchical references to objects and variables of each
// node, following continuation points.
func (c *conn) browseRefs(ctx context.Context, ids []*ua.NodeID) ([][]*ua.ReferenceDescription, error) {
	req := &ua.BrowseRequest{RequestedMaxReferencesPerNode: 1000, NodesToBrowse: make([]*ua.BrowseDescription, len(ids))}
	for i, nid := range ids {
		req.NodesToBrowse[i] = &ua.BrowseDescription{
			NodeID: nid, BrowseDirection: ua.BrowseDirectionForward,
			ReferenceTypeID: ua.NewNumericNodeID(0, id.HierarchicalReferences), IncludeSubtypes: true,
			NodeClassMask: uint32(ua.NodeClassObject | ua.NodeClassVariable), ResultMask: uint32(ua.BrowseResultMaskAll),
		}
	}
	bctx, cancel := context.WithTimeout(ctx, c.d.opts.Timeout)
	defer cancel()
	res, err := c.client.Browse(bctx, req)
	if err != nil {
		return nil, fmt.Errorf("browsing: %w", err)
	}
	if len(res.Results) != len(ids) {
		return nil, fmt.Errorf("browsing: the server answered %d nodes with %d results", len(ids), len(res.Results))
	}
	out := make([][]*ua.ReferenceDescription, len(ids))
	for i, r := range res.Results {
		out[i] = r.References
		cp := r.ContinuationPoint
		for len(cp) > 0 {
			nres, err := c.client.BrowseNext(bctx, &ua.BrowseNextRequest{ContinuationPoints: [][]byte{cp}})
			if err != nil || len(nres.Results) != 1 {
				return nil, fmt.Errorf("browsing further: %v", err)
			}
			out[i] = append(out[i], nres.Results[0].References...)
			cp = nres.Results[0].ContinuationPoint
		}
	}
	return out, nil
}

// describe reads each variable's data type, user access level and value.
func (c *conn) describe(ctx context.Context, vars []*browsed) error {
	attrs := []ua.AttributeID{ua.AttributeIDDataType, ua.AttributeIDUserAccessLevel, ua.AttributeIDValue}
	rvs := make([]*ua.ReadValueID, 0, len(vars)*len(attrs))
	for _, v := range vars {
		for _, a := range attrs {
			rvs = append(rvs, &ua.ReadValueID{NodeID: v.id, AttributeID: a})
		}
	}
	res, err := c.readIDs(ctx, rvs)
	if err != nil {
		return fmt.Errorf("reading the variables: %w", err)
	}
	for i, v := range vars {
		dt, access, val := res[3*i], res[3*i+1], res[3*i+2]
		v.dataType, v.builtin = dataTypeName(dt)
		if access != nil && access.Value != nil {
			if b, ok := access.Value.Value().(uint8); ok {
				v.access = b
			}
		}
		v.status = val.Status
		if val.Value != nil && val.Value.Type() != ua.TypeIDNull {
			v.array = val.Value.Has(ua.VariantArrayValues)
			if v.builtin == 0 && !v.array {
				v.builtin = val.Value.Type() // abstract or enumerated: the value's type
			}
			v.value = valueText(val.Value, v.builtin)
		}
	}
	return nil
}

// dataTypeName names a DataType attribute: a built-in type's name, a standard type's name,
// or the node id.
func dataTypeName(dv *ua.DataValue) (string, ua.TypeID) {
	if dv == nil || dv.Value == nil {
		return "?", 0
	}
	var dt *ua.NodeID
	switch v := dv.Value.Value().(type) {
	case *ua.NodeID:
		dt = v
	case *ua.ExpandedNodeID:
		dt = v.NodeID
	}
	if dt == nil {
		return "?", 0
	}
	if b, ok := builtinOfDataType(dt); ok {
		return typeName(b), b
	}
	if dt.Namespace() == 0 && dt.Type() <= ua.NodeIDTypeNumeric {
		if n := id.Name(dt.IntID()); n != "" {
			return n, 0
		}
	}
	return formatNodeID(dt), 0
}

// valueText formats a current value for the table.
func valueText(v *ua.Variant, builtin ua.TypeID) string {
	if t, ok := v.Value().(time.Time); ok {
		return t.UTC().Format(time.RFC3339Nano)
	}
	if st, ok := sparkplugType(builtin); ok && !v.Has(ua.VariantArrayValues) {
		if x, err := toValue(v, st); err == nil {
			return cut(x.String(), 40)
		}
	}
	return cut(fmt.Sprint(v.Value()), 40)
}

func cut(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// accessText formats an access level: R, W, RW or -.
func accessText(a byte) string {
	s := ""
	if a&byte(ua.AccessLevelTypeCurrentRead) != 0 {
		s += "R"
	}
	if a&byte(ua.AccessLevelTypeCurrentWrite) != 0 {
		s += "W"
	}
	if s == "" {
		return "-"
	}
	return s
}

func writeTable(w io.Writer, vars []*browsed) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE ID\tBROWSE PATH\tDATA TYPE\tACCESS\tVALUE")
	for _, v := range vars {
		val := v.value
		if quality(v.status) != drivers.Good {
			val = statusText(v.status)
		}
		if v.array {
			v.dataType += "[]"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", formatNodeID(v.id), strings.Join(v.path, "/"), v.dataType, accessText(v.access), val)
	}
	tw.Flush()
}
