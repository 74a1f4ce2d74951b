package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestKeygenWritesAUsablePair(t *testing.T) {
	for _, kind := range []string{"ed25519", "rsa"} {
		t.Run(kind, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "id")
			var out, errOut bytes.Buffer
			if code := runKeygen([]string{"-type", kind, "-out", path}, &out, &errOut); code != 0 {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
			for _, p := range []string{path, path + ".pub"} {
				if info, err := os.Stat(p); err != nil || info.Mode().Perm() != 0o600 {
					t.Fatalf("%s: %v, mode %v; want 0600", p, err, info.Mode().Perm())
				}
			}
			rawPriv, _ := os.ReadFile(path)
			signer, err := ssh.ParsePrivateKey(rawPriv)
			if err != nil {
				t.Fatal(err)
			}
			rawPub, _ := os.ReadFile(path + ".pub")
			pub, _, _, _, err := ssh.ParseAuthorizedKey(rawPub)
			if err != nil || !bytes.Equal(pub.Marshal(), signer.PublicKey().Marshal()) {
				t.Fatalf("public key %q does not match the private key (%v)", rawPub, err)
			}
			if code := runKeygen([]string{"-type", kind, "-out", path}, &out, &errOut); code == 0 {
				t.Fatal("keygen overwrote an existing key")
			}
		})
	}
	if code := runKeygen([]string{"-type", "dsa", "-out", filepath.Join(t.TempDir(), "x")}, new(bytes.Buffer), new(bytes.Buffer)); code == 0 {
		t.Fatal("keygen accepted -type dsa")
	}
}
