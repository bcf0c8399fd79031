#!/usr/bin/env node
// Eclipse Tahu's JS codec (npm sparkplug-payload) as an independent peer for the Go tests.
//
// Reads JSON lines on stdin and writes one JSON line per request on stdout:
//   {"op":"decode","b64":"..."}     -> {"ok":true,"payload":<Tahu decodePayload>,"raw":<protobuf fields>}
//   {"op":"encode","payload":{...}} -> {"ok":true,"b64":"..."}
//   any failure                      -> {"ok":false,"error":"..."}
// In results, Long values become decimal strings, bytes become {"$bytes":"<base64>"}, and
// numbers JSON cannot hold become the strings "NaN", "Infinity", "-Infinity" and "-0".
// In encode requests, {"$bytes":"<base64>"} becomes a Buffer; 64-bit values may be decimal
// strings (protobufjs accepts them).
'use strict';
const readline = require('readline');
const sparkplug = require('sparkplug-payload').get('spBv1.0');
const Long = require('long');
const proto = require('sparkplug-payload/lib/sparkplugPayloadProto');

const Payload = proto.org.eclipse.tahu.protobuf.Payload;

function out(x) {
  if (x === null || x === undefined) return x === undefined ? undefined : null;
  if (Long.isLong(x)) return x.toString();
  if (typeof x === 'number') {
    if (Number.isNaN(x)) return 'NaN';
    if (x === Infinity) return 'Infinity';
    if (x === -Infinity) return '-Infinity';
    if (Object.is(x, -0)) return '-0';
    return x;
  }
  if (x instanceof Uint8Array) return { $bytes: Buffer.from(x).toString('base64') };
  if (Array.isArray(x)) return x.map(out);
  if (typeof x === 'object') {
    const o = {};
    for (const k of Object.keys(x)) o[k] = out(x[k]);
    return o;
  }
  return x;
}

function inp(x) {
  if (Array.isArray(x)) return x.map(inp);
  if (x && typeof x === 'object') {
    if (typeof x.$bytes === 'string') return Buffer.from(x.$bytes, 'base64');
    const o = {};
    for (const k of Object.keys(x)) o[k] = inp(x[k]);
    return o;
  }
  return x;
}

function handle(req) {
  switch (req.op) {
    case 'decode': {
      const buf = Buffer.from(req.b64, 'base64');
      const payload = sparkplug.decodePayload(buf);
      // The raw protobuf fields, as decoded by protobufjs: present fields only.
      const raw = Payload.toObject(Payload.decode(buf), { longs: Long, bytes: Buffer, defaults: false });
      return { ok: true, payload: out(payload), raw: out(raw) };
    }
    case 'encode':
      return { ok: true, b64: Buffer.from(sparkplug.encodePayload(inp(req.payload))).toString('base64') };
    default:
      throw new Error('unknown op ' + req.op);
  }
}

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on('line', (line) => {
  if (!line.trim()) return;
  let res;
  try {
    res = handle(JSON.parse(line));
  } catch (e) {
    res = { ok: false, error: String(e && e.stack || e) };
  }
  process.stdout.write(JSON.stringify(res) + '\n');
});
