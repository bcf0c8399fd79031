// Package sparkplug implements the wellgate edge node's side of Sparkplug B 3.0 (see
// /work/shared/SPARKPLUG.md for the rules this package follows, with their ids):
//
//   - a hand-written protobuf codec for the Sparkplug B payload (Payload, Metric, PropertySet),
//     built on protowire so that field presence is explicit (an NBIRTH seq of 0 is on the wire);
//   - topic building and parsing, and identifier validation;
//   - a crash-safe birth/death sequence (bdSeq) store;
//   - Session, the edge-node state machine for one MQTT connection target: births, report by
//     exception, DATA, DDEATH, rebirth, store-and-forward replay, NDEATH and commands;
//   - primary host STATE parsing and tracking.
//
// The package never talks to a network itself: a Session publishes through the small Publisher
// interface it declares, and the caller feeds it samples, device states and received commands.
package sparkplug
