package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
)

// MongoDB wire protocol constants.
const (
	headerLen      = 16                // messageLength, requestID, responseTo, opCode
	maxMessageLen  = 48 << 20          // MongoDB's maxMessageSizeBytes
	opMsg          = 2013              // OP_MSG
	flagMoreToCome = uint32(1) << 1    // OP_MSG: no reply follows (request) or more replies follow (reply)
	sectionBody    = 0                 // OP_MSG section kind 0: one BSON document
	sectionSeq     = 1                 // OP_MSG section kind 1: a document sequence
	bsonTypeOffset = headerLen + 4 + 1 // the first element of a body section that comes first
)

// writeCommands are the commands that change documents, lower-cased.
var writeCommands = map[string]bool{
	"insert":        true,
	"update":        true,
	"delete":        true,
	"findandmodify": true,
}

// proxy passes MongoDB wire protocol messages between clients and
// FerretDB, running at most one write command at a time.
type proxy struct {
	backend string // FerretDB's Unix socket
	logger  *slog.Logger
	writes  sync.Mutex
}

func (p *proxy) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return // closed
		}
		go func() {
			if err := p.handle(c); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				p.logger.Info("proxy connection ended", "error", err)
			}
		}()
	}
}

// handle serves one client connection over a FerretDB connection of its
// own. A client sends a request and waits for its reply before it sends
// the next, except for a request flagged moreToCome, which has no reply.
func (p *proxy) handle(client net.Conn) error {
	defer client.Close()
	server, err := net.Dial("unix", p.backend)
	if err != nil {
		return err
	}
	defer server.Close()
	for {
		req, err := readMessage(client)
		if err != nil {
			return err
		}
		if err := p.exchange(req, client, server); err != nil {
			return err
		}
	}
}

// exchange sends req to the server and copies its replies to the client,
// holding the write lock throughout if req is a write command.
func (p *proxy) exchange(req []byte, client, server net.Conn) error {
	if writeCommands[strings.ToLower(commandName(req))] {
		p.writes.Lock()
		defer p.writes.Unlock()
	}
	if _, err := server.Write(req); err != nil {
		return err
	}
	if moreToCome(req) {
		return nil
	}
	for {
		reply, err := readMessage(server)
		if err != nil {
			return err
		}
		if _, err := client.Write(reply); err != nil {
			return err
		}
		if !moreToCome(reply) {
			return nil
		}
	}
}

// readMessage reads one whole wire protocol message.
func readMessage(r io.Reader) ([]byte, error) {
	var header [headerLen]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		return nil, err
	}
	n := int64(int32(binary.LittleEndian.Uint32(header[:4])))
	if n < headerLen || n > maxMessageLen {
		return nil, fmt.Errorf("message length %d out of range", n)
	}
	msg := make([]byte, n)
	copy(msg, header[:])
	if _, err := io.ReadFull(r, msg[headerLen:]); err != nil {
		return nil, err
	}
	return msg, nil
}

func opCode(msg []byte) int32 {
	return int32(binary.LittleEndian.Uint32(msg[12:16]))
}

// moreToCome reports whether msg is an OP_MSG with the moreToCome flag.
func moreToCome(msg []byte) bool {
	return opCode(msg) == opMsg && len(msg) >= headerLen+4 &&
		binary.LittleEndian.Uint32(msg[headerLen:])&flagMoreToCome != 0
}

// commandName returns the name of the command in an OP_MSG, which is the
// first key of its body section, or "" for anything else.
func commandName(msg []byte) string {
	if opCode(msg) != opMsg || len(msg) < headerLen+4 {
		return ""
	}
	sections := msg[headerLen+4:]
	for len(sections) > 0 {
		kind := sections[0]
		sections = sections[1:]
		if len(sections) < 4 {
			return ""
		}
		size := int(int32(binary.LittleEndian.Uint32(sections)))
		if size < 5 || size > len(sections) {
			return ""
		}
		switch kind {
		case sectionBody:
			// int32 length, then elements: a type byte and a NUL-terminated key.
			doc := sections[4:size]
			if len(doc) < 2 {
				return ""
			}
			key, _, ok := bytes.Cut(doc[1:], []byte{0})
			if !ok {
				return ""
			}
			return string(key)
		case sectionSeq:
			sections = sections[size:]
		default:
			return ""
		}
	}
	return ""
}
