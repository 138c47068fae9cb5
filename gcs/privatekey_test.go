package gcs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stowage/stowage/driver"
)

// TestMalformedPrivateKey checks that a private_key that is not a PEM RSA
// key fails at Open, naming the parameter that carried it (credentials or
// keyfile), and that the error never quotes the key.
func TestMalformedPrivateKey(t *testing.T) {
	const sentinel = "SENTINEL-NOT-A-KEY-9f3a"
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	keys := map[string]string{
		"not PEM":     sentinel,
		"garbage PEM": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte(sentinel)})),
		"EC key":      string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER})),
	}
	for name, key := range keys {
		creds := map[string]any{
			"type":         "service_account",
			"client_email": "x@stowage-test.iam.gserviceaccount.com",
			"private_key":  key,
		}
		j, _ := json.Marshal(creds)
		file := filepath.Join(t.TempDir(), "key.json")
		if err := os.WriteFile(file, j, 0o600); err != nil {
			t.Fatal(err)
		}
		for param, params := range map[string]driver.Params{
			"credentials": {"bucket": "b", "credentials": creds},
			"keyfile":     {"bucket": "b", "keyfile": file},
		} {
			t.Run(name+"/"+param, func(t *testing.T) {
				_, err := FromParams(t.Context(), params)
				if err == nil {
					t.Fatal("Open accepted a malformed private_key")
				}
				msg := err.Error()
				if !errors.Is(err, driver.ErrInvalidArgument) || !strings.Contains(msg, "parameter "+param) || !strings.Contains(msg, "private_key") {
					t.Fatalf("Open: %v, want an invalid-argument error naming parameter %s and private_key", err, param)
				}
				if strings.Contains(msg, sentinel) || strings.Contains(msg, "BEGIN") || strings.Contains(msg, strings.TrimSpace(key)) {
					t.Fatalf("Open: the error quotes the key: %v", err)
				}
			})
		}
	}
}
