package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"golang.org/x/crypto/ssh"
)

// runKeygen makes an SSH key pair for a lab: the private key (0600) for
// `bosh ssh`-less access as vcap, the public key to put in ssh_public_key.
func runKeygen(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("cpi keygen", flag.ContinueOnError)
	flags.SetOutput(stderr)
	kind := flags.String("type", "ed25519", "key type: ed25519 or rsa (3072 bits)")
	out := flags.String("out", "", "path of the private key; the public key goes to PATH.pub")
	comment := flags.String("comment", "bosh-libvirt-cpi", "comment of the public key")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if *out == "" {
		fmt.Fprintln(stderr, "usage: cpi keygen -out PATH [-type ed25519|rsa] [-comment TEXT]")
		return 2
	}
	if err := writeKeyPair(*kind, *out, *comment); err != nil {
		fmt.Fprintf(stderr, "cpi keygen: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "private key: %s\npublic key:  %s.pub (set it as ssh_public_key)\n", *out, *out)
	return 0
}

func writeKeyPair(kind, path, comment string) error {
	private, public, err := newKey(kind)
	if err != nil {
		return err
	}
	block, err := ssh.MarshalPrivateKey(private, comment)
	if err != nil {
		return fmt.Errorf("encoding the private key: %w", err)
	}
	sshPublic, err := ssh.NewPublicKey(public)
	if err != nil {
		return fmt.Errorf("encoding the public key: %w", err)
	}
	authorized := ssh.MarshalAuthorizedKey(sshPublic)
	line := append(authorized[:len(authorized)-1], []byte(" "+comment+"\n")...)
	// O_EXCL: never overwrite a key someone may already use.
	if err := writeNew(path, pem.EncodeToMemory(block)); err != nil {
		return err
	}
	if err := writeNew(path+".pub", line); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

func newKey(kind string) (any, any, error) {
	switch kind {
	case "ed25519":
		public, private, err := ed25519.GenerateKey(rand.Reader)
		return private, public, err
	case "rsa":
		private, err := rsa.GenerateKey(rand.Reader, 3072)
		if err != nil {
			return nil, nil, err
		}
		return private, &private.PublicKey, nil
	}
	return nil, nil, errors.New("-type must be ed25519 or rsa, got '" + kind + "'")
}

func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}
