// An independent reference for Cordon's transparency log: Go's own golang.org/x/mod/sumdb/tlog
// and sumdb/note compute tree hashes, proofs and tiles and verify Cordon's signed notes.
// Reads one JSON request on stdin, writes one JSON answer on stdout (see test/unit/tlog-go.test.ts).
// Build: GO111MODULE=off GOPATH=/usr/share/gocode go run ./test/tlog-go
package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type cosigKey struct {
	Name string `json:"name"`
	Pub  []byte `json:"pub"`
}

type noteReq struct {
	Msg       string     `json:"msg"`
	Vkeys     []string   `json:"vkeys"`
	CosigKeys []cosigKey `json:"cosigKeys"`
}

type request struct {
	Leaves      [][]byte   `json:"leaves"`
	Inclusion   [][2]int64 `json:"inclusion"`
	Consistency [][2]int64 `json:"consistency"`
	Tiles       [][2]int64 `json:"tiles"` // [oldSize, newSize]
	Notes       []noteReq  `json:"notes"`
}

type tileOut struct {
	Path string `json:"path"`
	Data []byte `json:"data"`
}

type noteOut struct {
	OK   bool     `json:"ok"`
	Err  string   `json:"err,omitempty"`
	Text string   `json:"text,omitempty"`
	Sigs []string `json:"sigs,omitempty"`
}

type answer struct {
	Roots       []tlog.Hash   `json:"roots"`
	Inclusion   [][]tlog.Hash `json:"inclusion"`
	Consistency [][]tlog.Hash `json:"consistency"`
	Tiles       [][]tileOut   `json:"tiles"`
	Notes       []noteOut     `json:"notes"`
}

// cosigVerifier checks C2SP tlog-cosignature cosignature/v1 (type 0x04) lines: Go's note package
// hands it the bytes after the key ID.
type cosigVerifier struct {
	name string
	pub  ed25519.PublicKey
	hash uint32
}

func (v cosigVerifier) Name() string    { return v.name }
func (v cosigVerifier) KeyHash() uint32 { return v.hash }
func (v cosigVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	ts := binary.BigEndian.Uint64(sig)
	m := "cosignature/v1\ntime " + strconv.FormatUint(ts, 10) + "\n" + string(msg)
	return ed25519.Verify(v.pub, []byte(m), sig[8:])
}

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fail(err)
	}
	var ans answer

	// Stored hashes, exactly as the go.sum database server writes them.
	var stored []tlog.Hash
	reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x >= int64(len(stored)) {
				return nil, errors.New("index out of range")
			}
			out[i] = stored[x]
		}
		return out, nil
	})
	ans.Roots = append(ans.Roots, mustHash(tlog.TreeHash(0, reader)))
	for n, data := range req.Leaves {
		hs, err := tlog.StoredHashes(int64(n), data, reader)
		if err != nil {
			fail(err)
		}
		stored = append(stored, hs...)
		ans.Roots = append(ans.Roots, mustHash(tlog.TreeHash(int64(n+1), reader)))
	}
	for _, q := range req.Inclusion {
		p, err := tlog.ProveRecord(q[0], q[1], reader)
		if err != nil {
			fail(err)
		}
		ans.Inclusion = append(ans.Inclusion, p)
	}
	for _, q := range req.Consistency {
		p, err := tlog.ProveTree(q[0], q[1], reader)
		if err != nil {
			fail(err)
		}
		ans.Consistency = append(ans.Consistency, p)
	}
	for _, q := range req.Tiles {
		var out []tileOut
		for _, t := range tlog.NewTiles(8, q[0], q[1]) {
			data, err := tlog.ReadTileData(t, reader)
			if err != nil {
				fail(err)
			}
			// Go's sumdb paths carry the height (tile/8/L/N); C2SP tlog-tiles paths do not.
			out = append(out, tileOut{Path: strings.Replace(t.Path(), "tile/8/", "tile/", 1), Data: data})
		}
		ans.Tiles = append(ans.Tiles, out)
	}
	for _, nr := range req.Notes {
		var vs []note.Verifier
		for _, k := range nr.Vkeys {
			v, err := note.NewVerifier(k)
			if err != nil {
				fail(err)
			}
			vs = append(vs, v)
		}
		for _, k := range nr.CosigKeys {
			h := sha256.Sum256(append(append([]byte(k.Name), '\n', 0x04), k.Pub...))
			vs = append(vs, cosigVerifier{name: k.Name, pub: k.Pub, hash: binary.BigEndian.Uint32(h[:4])})
		}
		n, err := note.Open([]byte(nr.Msg), note.VerifierList(vs...))
		if err != nil {
			ans.Notes = append(ans.Notes, noteOut{OK: false, Err: err.Error()})
			continue
		}
		o := noteOut{OK: true, Text: n.Text}
		for _, s := range n.Sigs {
			o.Sigs = append(o.Sigs, s.Name)
		}
		ans.Notes = append(ans.Notes, o)
	}
	if err := json.NewEncoder(os.Stdout).Encode(ans); err != nil {
		fail(err)
	}
}

func mustHash(h tlog.Hash, err error) tlog.Hash {
	if err != nil {
		fail(err)
	}
	return h
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "tlog-go:", err)
	os.Exit(1)
}
