package zmqsock

import (
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/sluicelog/sluice/internal/conf"
)

// CurveConfig is the `curve` block of a zmq input or output: CURVE
// encryption and authentication (ZeroMQ RFC 26). The socket's role follows
// its endpoints: a socket that binds is the CURVE server, one that
// connects is the client. Every key is 40 Z85 characters, as printed by
// `sluice keygen`; each may be given inline (use env("VAR") to keep it
// out of the file) or as a file holding just the key.
type CurveConfig struct {
	// SecretKey is this socket's secret key. Required on the server (bind
	// side). On the client it is optional: without it a new keypair is
	// made each time the socket opens, which suits servers that accept
	// any client (no authorized_keys).
	SecretKey     string `hcl:"secret_key,optional"`
	SecretKeyFile string `hcl:"secret_key_file,optional"`
	// ServerKey is the server's public key. Client (connect side) only,
	// and required there: the client refuses a server that cannot prove it
	// holds the matching secret key.
	ServerKey     string `hcl:"server_key,optional"`
	ServerKeyFile string `hcl:"server_key_file,optional"`
	// AuthorizedKeys are the public keys of the clients the server
	// accepts. Server only. Empty (and no file): any client that knows the
	// server's public key may connect (the link is still encrypted).
	AuthorizedKeys []string `hcl:"authorized_keys,optional"`
	// AuthorizedKeysFile holds more authorized keys, one per line; blank
	// lines and lines starting with # are ignored.
	AuthorizedKeysFile string `hcl:"authorized_keys_file,optional"`
}

// Curve is a validated CurveConfig for one socket.
type Curve struct {
	Server    bool   // the socket binds: CURVE server
	SecretKey string // Z85; "" on a client means: make an ephemeral keypair
	PublicKey string // Z85, derived from SecretKey ("" with it)
	ServerKey string // Z85; clients only
	// Authorized holds the accepted client keys (servers only); nil means
	// any client.
	Authorized map[[32]byte]bool
}

// ParseCurve validates c for a socket that binds (server) or connects.
// Files are read here. Errors are *conf.FieldError values with fields
// "curve.<attribute>"; warnings are human-readable (a secret key file
// readable by others).
func ParseCurve(c *CurveConfig, server bool) (cv *Curve, warnings []string, errs []error) {
	if c == nil {
		return nil, nil, nil
	}
	add := func(field string, err error) { errs = append(errs, conf.Field("curve."+field, err)) }
	cv = &Curve{Server: server}

	secret, secretField, warn, err := oneKey(c.SecretKey, c.SecretKeyFile, "secret_key", true)
	if err != nil {
		add(secretField, err)
	}
	warnings = append(warnings, warn...)
	var srvKey string
	if server {
		if c.ServerKey != "" || c.ServerKeyFile != "" {
			field := "server_key"
			if c.ServerKey == "" {
				field = "server_key_file"
			}
			add(field, errors.New("this socket binds, so it is the CURVE server: it needs its own secret_key, not a server_key (server_key belongs on the sockets that connect)"))
		}
		if c.SecretKey == "" && c.SecretKeyFile == "" {
			add("secret_key", errors.New("required: a socket that binds is the CURVE server and needs its secret key (secret_key or secret_key_file; make one with `sluice keygen`)"))
		}
	} else {
		var serverField string
		srvKey, serverField, _, err = oneKey(c.ServerKey, c.ServerKeyFile, "server_key", false)
		if err != nil {
			add(serverField, err)
		}
		if c.ServerKey == "" && c.ServerKeyFile == "" {
			add("server_key", errors.New("required: a socket that connects is the CURVE client and needs the server's public key (server_key or server_key_file)"))
		}
		if len(c.AuthorizedKeys) > 0 || c.AuthorizedKeysFile != "" {
			field := "authorized_keys"
			if len(c.AuthorizedKeys) == 0 {
				field = "authorized_keys_file"
			}
			add(field, errors.New("only a socket that binds (the CURVE server) can authorize clients; this one connects"))
		}
	}
	cv.SecretKey, cv.ServerKey = secret, srvKey
	if secret != "" {
		pub, err := PublicKey(secret)
		if err != nil {
			add(secretField, err)
		}
		cv.PublicKey = pub
	}

	if server && (len(c.AuthorizedKeys) > 0 || c.AuthorizedKeysFile != "") {
		cv.Authorized = map[[32]byte]bool{}
		for i, k := range c.AuthorizedKeys {
			b, err := ParseKey(strings.TrimSpace(k))
			if err != nil {
				add("authorized_keys", fmt.Errorf("key %d: %w", i+1, err))
				continue
			}
			cv.Authorized[[32]byte(b)] = true
		}
		if c.AuthorizedKeysFile != "" {
			lines, err := readKeyLines(c.AuthorizedKeysFile)
			if err != nil {
				add("authorized_keys_file", err)
			}
			for _, l := range lines {
				b, err := ParseKey(l.text)
				if err != nil {
					add("authorized_keys_file", fmt.Errorf("%s:%d: %w", c.AuthorizedKeysFile, l.no, err))
					continue
				}
				cv.Authorized[[32]byte(b)] = true
			}
			if err == nil && len(lines) == 0 {
				add("authorized_keys_file", fmt.Errorf("%s holds no key (to accept any client, leave authorized_keys out)", c.AuthorizedKeysFile))
			}
		}
	}
	return cv, warnings, errs
}

// oneKey returns the key given inline or in a file (not both), validated.
// field is the attribute to blame.
func oneKey(inline, file, name string, secret bool) (key, field string, warnings []string, err error) {
	switch {
	case inline != "" && file != "":
		return "", name, nil, fmt.Errorf("set %s or %s_file, not both", name, name)
	case file != "":
		field = name + "_file"
		lines, err := readKeyLines(file)
		if err != nil {
			return "", field, nil, err
		}
		if len(lines) != 1 {
			return "", field, nil, fmt.Errorf("%s must hold exactly one key, found %d lines of text", file, len(lines))
		}
		if _, err := ParseKey(lines[0].text); err != nil {
			return "", field, nil, fmt.Errorf("%s: %w", file, err)
		}
		if secret {
			if st, err := os.Stat(file); err == nil && st.Mode().Perm()&0o077 != 0 {
				warnings = append(warnings, fmt.Sprintf("secret key file %s is readable by group or others (mode %v); chmod 600 it", file, st.Mode().Perm()))
			}
		}
		return lines[0].text, field, warnings, nil
	case inline != "":
		if _, err := ParseKey(inline); err != nil {
			return "", name, nil, err
		}
		return inline, name, nil, nil
	}
	return "", name, nil, nil
}

type keyLine struct {
	no   int
	text string
}

// readKeyLines returns the non-blank lines of a key file that do not start
// with '#', trimmed. Files over 1 MiB are refused.
func readKeyLines(path string) ([]keyLine, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read key file: %w", err)
	}
	if st.Size() > 1<<20 {
		return nil, fmt.Errorf("%s is %d bytes; a key file is a few lines", path, st.Size())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read key file: %w", err)
	}
	var out []keyLine
	for i, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out = append(out, keyLine{no: i + 1, text: l})
	}
	return out, nil
}

// PublicKey derives the Z85 public key of a Z85 CURVE secret key
// (Curve25519, as libzmq's zmq_curve_public).
func PublicKey(secret string) (string, error) {
	b, err := ParseKey(secret)
	if err != nil {
		return "", err
	}
	k, err := ecdh.X25519().NewPrivateKey(b)
	if err != nil {
		return "", fmt.Errorf("invalid CURVE secret key: %w", err)
	}
	return z85Encode(k.PublicKey().Bytes()), nil
}

// NewKeypair makes a CURVE keypair from crypto/rand, Z85-encoded.
func NewKeypair() (public, secret string, err error) {
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("generating a CURVE keypair: %w", err)
	}
	return z85Encode(k.PublicKey().Bytes()), z85Encode(k.Bytes()), nil
}
