package natsauth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/bcrypt"
)

// SeedFile is where Generate keeps the NKEY seed of the named user in dir.
func SeedFile(dir, name string) string { return filepath.Join(dir, name+".nk") }

// MQTTPasswordFile is where Generate keeps the MQTT password of a provider's
// or council's account in dir, in clear, for handing over.
func MQTTPasswordFile(dir, account string) string { return filepath.Join(dir, account+".mqtt") }

// mqttHashFile keeps the bcrypt hash of that password, so that generating
// again writes the same accounts file.
func mqttHashFile(dir, account string) string { return filepath.Join(dir, account+".mqtt.bcrypt") }

// Generate writes the accounts file conf and the users' secrets into
// seedDir: one NKEY seed per user and one MQTT password per provider and
// council. Secrets already in seedDir are kept, so adding a provider
// changes nobody else's credentials and generating twice writes the same
// file. It returns the plan with the public keys and password hashes.
func Generate(spec Spec, conf, seedDir string) (*Plan, error) {
	plan, err := spec.Plan()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(seedDir, 0o700); err != nil {
		return nil, fmt.Errorf("seed folder: %w", err)
	}
	for i := range plan.Users {
		u := &plan.Users[i]
		if u.PublicKey, err = userKey(SeedFile(seedDir, u.Name), *u); err != nil {
			return nil, err
		}
	}
	for i := range plan.Publishers {
		p := &plan.Publishers[i]
		if p.MQTTPasswordHash, err = mqttPassword(seedDir, p.Account); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(conf, AccountsConf(plan), 0o644); err != nil {
		return nil, fmt.Errorf("accounts file: %w", err)
	}
	return plan, nil
}

// userKey reads the user's seed from path, or creates one there.
func userKey(path string, u User) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		kp, err := nkeys.ParseDecoratedNKey(b)
		if err != nil {
			return "", fmt.Errorf("seed %s: %w", path, err)
		}
		pub, err := kp.PublicKey()
		if err != nil || !nkeys.IsValidPublicUserKey(pub) {
			return "", fmt.Errorf("seed %s: not a user seed", path)
		}
		return pub, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("seed %s: %w", path, err)
	}
	kp, err := nkeys.CreateUser()
	if err != nil {
		return "", fmt.Errorf("create key of %s: %w", u.Name, err)
	}
	seed, err := kp.Seed()
	if err != nil {
		return "", fmt.Errorf("seed of %s: %w", u.Name, err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return "", fmt.Errorf("public key of %s: %w", u.Name, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# NATS NKEY seed of the Assoliment user %s (account %s, public key %s).\n", u.Name, u.Account, pub)
	b.WriteString("# Keep it secret: whoever holds it connects as this user.\n")
	if u.InboxPrefix != "" {
		fmt.Fprintf(&b, "# Connect with inbox prefix %s (nats CLI: --nkey <this file> --inbox-prefix %s).\n", u.InboxPrefix, u.InboxPrefix)
	}
	fmt.Fprintf(&b, "-----BEGIN USER NKEY SEED-----\n%s\n------END USER NKEY SEED------\n", seed)
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return "", fmt.Errorf("write seed: %w", err)
	}
	return pub, nil
}

// mqttPassword returns the bcrypt hash of the account's MQTT password,
// creating the password (32 random bytes, base64url) when seedDir has none.
// The hash is kept beside it and reused while it matches the password.
func mqttPassword(seedDir, account string) (string, error) {
	path := MQTTPasswordFile(seedDir, account)
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return "", fmt.Errorf("mqtt password of %s: %w", account, err)
		}
		b = []byte(base64.RawURLEncoding.EncodeToString(raw))
		if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
			return "", fmt.Errorf("write mqtt password: %w", err)
		}
	case err != nil:
		return "", fmt.Errorf("mqtt password %s: %w", path, err)
	}
	password := strings.TrimSpace(string(b))
	if len(password) < 16 {
		return "", fmt.Errorf("mqtt password %s: shorter than 16 characters; delete the file to have a new one generated", path)
	}
	// The hash file holds the SHA-256 of the password it was made from, so
	// that it is reused, without bcrypt's deliberate cost, while the
	// password stays the same.
	sum := sha256.Sum256([]byte(password))
	fingerprint := "sha256:" + hex.EncodeToString(sum[:])
	hashPath := mqttHashFile(seedDir, account)
	if h, err := os.ReadFile(hashPath); err == nil {
		if fp, hash, ok := strings.Cut(strings.TrimSpace(string(h)), "\n"); ok && fp == fingerprint && strings.HasPrefix(hash, "$2") {
			return hash, nil
		}
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("hash mqtt password of %s: %w", account, err)
	}
	if err := os.WriteFile(hashPath, []byte(fingerprint+"\n"+string(hash)+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write mqtt password hash: %w", err)
	}
	return string(hash), nil
}

// MQTTPassword reads the clear MQTT password of account from seedDir.
func MQTTPassword(seedDir, account string) (string, error) {
	b, err := os.ReadFile(MQTTPasswordFile(seedDir, account))
	if err != nil {
		return "", fmt.Errorf("mqtt password: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}
