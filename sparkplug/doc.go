// Package sparkplug implements the wellgate edge node's side of Sparkplug B 3.0 (see
// docs/sparkplug.md for the rules this package follows, with their ids):
//
//   - a hand-written protobuf codec for the Sparkplug B payload (Payload, Metric, PropertySet),
//     built on protowire so that field presence is explicit (an NBIRTH seq of 0 is on the wire);
//   - topic building and parsing, and identifier validation;
//   - a crash-safe birth/death sequence (bdSeq) store, spent only by a CONNECT that went out
//     (Peek, Commit);
//   - Session, the edge-node state machine for one MQTT connection target: births, report by
//     exception, DATA, DDEATH, rebirth, store-and-forward replay, NDEATH and commands;
//   - primary host STATE parsing and tracking.
//
// The package never talks to a network itself: a Session publishes through the small Publisher
// interface it declares, and the caller feeds it samples, device states and received commands.
//
// Decisions where the specification leaves a choice (docs/sparkplug.md lists them with the
// rules; bracketed ids are its):
//
//   - Metric properties use the names of Ignition tag properties, which MQTT Engine applies to
//     the tags it creates: Quality (Int32: 192 good, 0 bad, 500 stale), engUnit (String, the
//     tag's units), documentation (String, its description) and readOnly (Boolean, true for
//     tags that are not writable). Births carry Quality on every tag metric and the others
//     when configured.
//   - DATA carries Quality only when the quality is not Good or has changed since the last
//     report: MQTT Engine takes a metric without Quality to be Good, so a Bad or Stale value
//     must always say so, and a return to Good must be announced once [data-quality].
//   - DATA carries no datatype (births define it); with aliases it carries no name either.
//   - Every metric starts null with Bad quality, and every device starts up: a device is born
//     with the node and reported down by SetDeviceState when its driver says so. A device that
//     is down at birth time is born dead: DBIRTH with every metric null and Bad, then DDEATH
//     [device-born-dead].
//   - A historical sample that the last birth carried is not replayed
//     [historical-covered-by-birth].
//   - Rebirth requests within RebirthHoldoff of the last one served merge into one rebirth
//     [rebirth-holdoff]; a command with more than MaxCommandMetrics metrics is refused as a
//     whole [cmd-metrics-bound].
//   - Report by exception measures MaxInterval on the session clock (Options.Now), not on
//     source timestamps, which a device's clock may skew; a metric's timestamp in births and
//     DATA is its sample's time.
//   - Intentional NDEATH goes out at QoS 1 like the will.
//   - A corrupt bdSeq file restarts the sequence at 0 with a warning error (ErrBdSeqCorrupt)
//     [bdseq-persisted].
package sparkplug
