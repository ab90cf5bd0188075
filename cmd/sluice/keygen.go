package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/sluicelog/sluice/internal/zmqsock"
)

const keygenUsage = `usage: sluice keygen [-out PREFIX]

Makes a CURVE keypair for the zmq input and output (40 Z85 characters each).
Without -out it prints both keys as HCL attributes. With -out it writes
PREFIX.key (the secret key, mode 0600) and PREFIX.pub (the public key) for
secret_key_file / server_key_file / authorized_keys_file, refuses to
overwrite either, and prints only the public key.
`

// cmdKeygen implements `sluice keygen`. Exit status: 0, 1 if a file cannot
// be written, 2 on a usage error.
func cmdKeygen(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("keygen", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() { fmt.Fprint(stderr, keygenUsage) }
	out := flags.String("out", "", "write PREFIX.key (secret, 0600) and PREFIX.pub instead of printing the secret key")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if flags.NArg() > 0 {
		fmt.Fprintf(stderr, "sluice keygen: unexpected argument %q\n", flags.Arg(0))
		return 2
	}
	pub, sec, err := zmqsock.NewKeypair()
	if err != nil {
		fmt.Fprintf(stderr, "sluice keygen: %v\n", err)
		return 1
	}
	if *out == "" {
		fmt.Fprintf(stdout, "# CURVE keypair (Z85). Keep secret_key secret: prefer secret_key_file or env().\n")
		fmt.Fprintf(stdout, "public_key = %s\n", zmqsock.HCLQuote(pub))
		fmt.Fprintf(stdout, "secret_key = %s\n", zmqsock.HCLQuote(sec))
		return 0
	}
	keyFile, pubFile := *out+".key", *out+".pub"
	if err := writeNew(keyFile, sec, 0o600); err != nil {
		fmt.Fprintf(stderr, "sluice keygen: %v\n", err)
		return 1
	}
	if err := writeNew(pubFile, pub, 0o644); err != nil {
		_ = os.Remove(keyFile)
		fmt.Fprintf(stderr, "sluice keygen: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s (secret key, mode 0600) and %s\npublic_key = %s\n", keyFile, pubFile, zmqsock.HCLQuote(pub))
	return 0
}

// writeNew creates path (which must not exist) holding key and a newline.
func writeNew(path, key string, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s exists; not overwriting a key", path)
		}
		return err
	}
	if _, err := f.WriteString(key + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
