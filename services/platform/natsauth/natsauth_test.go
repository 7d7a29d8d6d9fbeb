package natsauth_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/assoliment/assoliment/services/platform/natsauth"
	"github.com/assoliment/assoliment/services/platform/natsauth/natsauthtest"
)

var userKeyRE = regexp.MustCompile(`\bU[A-Z2-7]{55}\b`)

// The committed accounts.conf is what natsauth generates from the committed
// publishers.yaml, apart from the (example) keys.
func TestShippedAccountsAreGenerated(t *testing.T) {
	src := natsauthtest.Dir(t)
	spec, err := natsauth.LoadSpec(filepath.Join(src, "publishers.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := natsauth.Generate(spec, filepath.Join(dir, "accounts.conf"), filepath.Join(dir, "seeds")); err != nil {
		t.Fatal(err)
	}
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return userKeyRE.ReplaceAllString(string(b), "U…")
	}
	if got, want := read(filepath.Join(src, "accounts.conf")), read(filepath.Join(dir, "accounts.conf")); got != want {
		t.Fatalf("deploy/nats/secure/accounts.conf is out of date; generate it again (docs/security.md).\ncommitted:\n%s\ngenerated:\n%s", got, want)
	}
}

func TestGenerateKeepsSeeds(t *testing.T) {
	dir := t.TempDir()
	conf, seeds := filepath.Join(dir, "accounts.conf"), filepath.Join(dir, "seeds")
	spec := natsauth.Spec{Municipalities: []string{"vic"}, Providers: []string{"aigues"}}
	first, err := natsauth.Generate(spec, conf, seeds)
	if err != nil {
		t.Fatal(err)
	}
	spec.Providers = append(spec.Providers, "fcc")
	second, err := natsauth.Generate(spec, conf, seeds)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for _, u := range second {
		keys[u.Name] = u.PublicKey
	}
	if len(second) != len(first)+1 || keys["provider-fcc"] == "" {
		t.Fatalf("users %d then %d", len(first), len(second))
	}
	for _, u := range first {
		if keys[u.Name] != u.PublicKey {
			t.Errorf("%s: key changed on regeneration", u.Name)
		}
		fi, err := os.Stat(natsauth.SeedFile(seeds, u.Name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: seed file %v %v", u.Name, err, fi)
		}
	}
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`\bSU[A-Z2-7]{56}\b`).Match(b) {
		t.Fatal("the accounts file must hold public keys only, never a seed")
	}
}

func TestSpecProblemsListedTogether(t *testing.T) {
	_, err := natsauth.Spec{
		Municipalities: []string{"Sabadell", "vic", "vic"},
		Providers:      []string{"council", "fcc.medi", "aigues*"},
		Stream:         "SMART.CITY",
	}.Users()
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{`"Sabadell"`, `"vic" is listed twice`, `provider "council"`, `"fcc.medi"`, `"aigues*"`, `"SMART.CITY"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
}

func TestLoadSpecRefusesUnknownFields(t *testing.T) {
	p := filepath.Join(t.TempDir(), "spec.yaml")
	if err := os.WriteFile(p, []byte("municipalities: [vic]\nprovider: [fcc]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := natsauth.LoadSpec(p); err == nil || !strings.Contains(err.Error(), "provider") {
		t.Fatalf("a misspelt field must be refused, got %v", err)
	}
}
