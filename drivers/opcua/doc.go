// Package opcua is wellgate's OPC UA driver, built on github.com/gopcua/opcua: one supervised
// session per device (server), secured and authenticated as configured, reading its tags by
// subscription or by batched reads, writing them, and browsing a server's address space.
//
// # Tags and types
//
// A tag names a node by its node id (ParseNodeID: i=, s=, g=, b=, with ns= or nsu=) and is
// published as the tightest Sparkplug type of the node's built-in type: Boolean, SByte →
// Int8, Byte → UInt8, Int16, UInt16, Int32, UInt32, Int64, UInt64, Float, Double, String,
// DateTime, ByteString → Bytes. Other types (LocalizedText, GUID, structures, arrays) are
// refused: the tag stays bad and the log names it. A tag's type may be given; the node's values
// are then converted to it (numbers and Boolean among themselves, with range checks; the other
// types only to themselves), and a node that cannot be converted is refused at connect.
//
// Sparkplug births need every type before the first connect, so a tag without a type is
// published as Double (which holds every Boolean and number) until its node has been read
// once; the type learned then is kept in Options.StateDir and used from the next start on,
// and the log says so. A String, DateTime or ByteString node without a type is bad until that
// restart; `type` avoids all this, and `wellgate browse -toml` writes it.
//
// Status codes become qualities: Good → good, Uncertain → stale (with the value), Bad → bad
// (with a null). Samples carry the source timestamp, else the server's, else the time read.
//
// # Subscriptions and polls
//
// In subscribe mode (the default) each tag is a monitored item sampled at the interval, queue
// size 1, with its deadband as an absolute DataChangeFilter (a server that refuses the filter
// gets the item without it; the gateway's report by exception applies the deadband anyway). In
// poll mode every tag is read every interval, on the device's poll_schedule (drivers.Schedule:
// "clock" at whole multiples of the interval since the Unix epoch, or "start"); the schedule
// does not apply to subscribe mode, where the server samples. Both read the server's operation limits at
// connect (MaxNodesPerRead, MaxMonitoredItemsPerCall, MaxMonitoredItemsPerSubscription) and
// split requests accordingly; a server that refuses a request with BadTooManyOperations
// anyway gets requests half as large. A connect reads every tag once and delivers the values
// before reporting the device up, so that a DBIRTH carries them.
//
// # Supervision
//
// gopcua's own reconnection is off (it leaves subscriptions silent after a cut where the
// server keeps the session, gopcua #895; a failed re-subscribe still reports Connected; a
// refused reconnect ends it for good). Instead each device's goroutine watches the client's
// state channel, reads the server's state when the session has been quiet for KeepAlive, and
// runs a data watchdog: after Watchdog without notifications it reads the subscribed values,
// and a change beyond the deadband still undelivered two publishing intervals later means the
// subscription is silent. On any failure the client and its subscriptions are thrown away and
// built again with the shared jittered backoff. A session lost after it had lasted a while is
// retried at once; the device is reported down (every tag bad, then Sink.DeviceState) only when
// that fails. The session a broken connection leaves on the server is activated through the
// next connection, its subscriptions deleted and the session closed, so that none is left
// behind.
//
// # Security
//
// security_policy and security_mode choose the endpoint. On a secured endpoint the server's
// certificate must match server_fingerprint (SHA256:…) or server_certificate; any other is
// refused, the device stays down, and the log and the device's last error print the
// certificate's fingerprint and the line that would trust it. The client certificate is
// client_certificate/client_key or a pair created on first use in PKIDir (0600), whose
// fingerprint is logged so that it can be trusted on the server. Users authenticate with
// username/password or user_certificate/user_key, anonymously otherwise.
//
// # Writes
//
// Writable tags accept writes (drivers.Writer): the value is checked against min/max,
// converted exactly to the node's built-in type (a fraction for an integer node, or a value out
// of the type's range, is drivers.ErrOutOfRange), written, the status code logged, and the
// value read back returned.
package opcua
