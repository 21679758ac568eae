// Package protocol is the RocketMQ 4.x remoting wire codec used by mqd: the
// frame, the RemotingCommand with its JSON (type 0) and ROCKETMQ binary
// (type 1) header encodings, request/response code constants, one typed
// header per request (one file per request family) and the JSON bodies
// (route data, heartbeats, lock sets, registration, admin tables).
//
// Frame (big-endian, Java's RemotingCommand.encode/decode (frame layout)):
//
//	int32  length = 4 + headerLen + bodyLen   (does not count itself)
//	byte   serialize type (0 JSON, 1 ROCKETMQ)
//	uint24 headerLen
//	[headerLen] header
//	[...]  body
//
// The package is pure: no I/O beyond the io.Reader handed to ReadFrame or
// a Decoder, no goroutines, no shared mutable state, and it imports nothing
// from this module. A Decoder belongs to one goroutine (a connection's read
// loop); Commands and headers are plain values owned by whoever holds them.
//
// Compatibility rules honoured here (the Java classes named below):
//   - JSON headers are written compactly with string-valued extFields — the
//     Go client drops a response whose extFields hold a non-string value.
//   - JSON headers are read tolerantly: absent/null remark and extFields,
//     unknown keys, language given as name or code.
//   - Route bodies are compact, with brokerAddrs always an object with
//     quoted integer keys and queueDatas always an array, because the Go
//     client parses brokerAddrs with a string splitter; bodies from Java
//     (fastjson, unquoted integer keys) are accepted by DecodeJSON.
//   - Decoding never panics on hostile input; every frame error is a
//     *FrameError and every typed-header error a *FieldError naming the
//     field.
package protocol
