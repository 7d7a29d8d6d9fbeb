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

var (
	userKeyRE = regexp.MustCompile(`\bU[A-Z2-7]{55}\b`)
	bcryptRE  = regexp.MustCompile(`\$2a\$\d\d\$[./A-Za-z0-9]{53}`)
)

// The committed accounts.conf is what natsauth generates from the committed
// publishers.yaml, apart from the (example) keys and password hashes.
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
		return bcryptRE.ReplaceAllString(userKeyRE.ReplaceAllString(string(b), "U…"), "$2a$…")
	}
	if got, want := read(filepath.Join(src, "accounts.conf")), read(filepath.Join(dir, "accounts.conf")); got != want {
		t.Fatalf("deploy/nats/secure/accounts.conf is out of date; generate it again (docs/security.md).\ncommitted:\n%s\ngenerated:\n%s", got, want)
	}
}

// Generating again keeps every secret, adds only the new publisher's, and
// writes the same accounts file byte for byte when nothing changed.
func TestGenerateKeepsSeeds(t *testing.T) {
	dir := t.TempDir()
	conf, seeds := filepath.Join(dir, "accounts.conf"), filepath.Join(dir, "seeds")
	spec := natsauth.Spec{Municipalities: []string{"vic"}, Providers: []natsauth.ProviderSpec{{ID: "aigues", Municipalities: []string{"vic"}}}}
	first, err := natsauth.Generate(spec, conf, seeds)
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := natsauth.Generate(spec, conf, seeds); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(conf); string(again) != string(before) {
		t.Fatal("generating twice from the same spec and secrets changed the accounts file")
	}
	spec.Providers = append(spec.Providers, natsauth.ProviderSpec{ID: "fcc", Municipalities: []string{"vic"}})
	second, err := natsauth.Generate(spec, conf, seeds)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for _, u := range second.Users {
		keys[u.Name] = u.PublicKey
	}
	hashes := map[string]string{}
	for _, p := range second.Publishers {
		hashes[p.Account] = p.MQTTPasswordHash
	}
	if len(second.Users) != len(first.Users)+1 || keys["provider-fcc"] == "" || hashes["provider-fcc"] == "" {
		t.Fatalf("users %d then %d", len(first.Users), len(second.Users))
	}
	for _, u := range first.Users {
		if keys[u.Name] != u.PublicKey {
			t.Errorf("%s: key changed on regeneration", u.Name)
		}
		fi, err := os.Stat(natsauth.SeedFile(seeds, u.Name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: seed file %v %v", u.Name, err, fi)
		}
	}
	for _, p := range first.Publishers {
		if hashes[p.Account] != p.MQTTPasswordHash {
			t.Errorf("%s: MQTT password hash changed on regeneration", p.Account)
		}
		fi, err := os.Stat(natsauth.MQTTPasswordFile(seeds, p.Account))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: password file %v %v", p.Account, err, fi)
		}
	}
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`\bSU[A-Z2-7]{56}\b`).Match(b) {
		t.Fatal("the accounts file must hold public keys only, never a seed")
	}
	for _, p := range second.Publishers {
		clear, err := natsauth.MQTTPassword(seeds, p.Account)
		if err != nil || strings.Contains(string(b), clear) {
			t.Fatalf("%s: the accounts file must hold password hashes only (%v)", p.Account, err)
		}
	}
}

func TestSpecProblemsListedTogether(t *testing.T) {
	_, err := natsauth.Spec{
		Municipalities: []string{"Sabadell", "vic", "vic", "olot"},
		Providers: []natsauth.ProviderSpec{
			{ID: "council", Municipalities: []string{"vic"}},
			{ID: "fcc.medi", Municipalities: []string{"vic"}},
			{ID: "aigues", Municipalities: []string{"girona", "olot", "olot"}},
			{ID: "aigues", Municipalities: []string{"vic"}},
			{ID: "endesa"},
			{Municipalities: []string{"vic"}},
		},
		Limits: natsauth.LimitsSpec{Connections: -1, Payload: "2MiB", JetStreamStorage: "lots", DeadLetterAge: "1m"},
		Stream: "SMART.CITY",
	}.Plan()
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{
		`municipalities[0]: "Sabadell"`, `municipalities[2]: "vic" is listed twice`,
		`providers[0].id: "council" is reserved`, `providers[1].id: "fcc.medi"`,
		`providers[2].municipalities[0]: "girona" is not among municipalities`, `providers[2].municipalities[2]: "olot" is listed twice`,
		`providers[3].id: provider "aigues" is listed twice`, `providers[4].municipalities: provider "endesa" serves no municipality`,
		`providers[5].id: missing`,
		`limits.connections: -1`, `limits.payload: "2MiB"`, `limits.jetstream_storage: "lots"`, `limits.dead_letter_age: "1m"`,
		`stream: "SMART.CITY"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
}

// Limits left out keep their defaults; those set are used.
func TestLimits(t *testing.T) {
	spec := natsauth.Spec{Municipalities: []string{"vic"}, Limits: natsauth.LimitsSpec{Connections: 3, Payload: "70KiB"}}
	plan, err := spec.Plan()
	if err != nil {
		t.Fatal(err)
	}
	want := natsauth.DefaultLimits
	want.Connections, want.Payload = 3, 70<<10
	if plan.Limits != want {
		t.Fatalf("limits %+v, want %+v", plan.Limits, want)
	}
	conf := string(natsauth.AccountsConf(plan))
	if !strings.Contains(conf, "max_connections: 3, max_subscriptions: 100, max_payload: 71680") {
		t.Fatalf("limits not in the accounts file:\n%s", conf)
	}
}

func TestLoadSpecRefusesUnknownFields(t *testing.T) {
	p := filepath.Join(t.TempDir(), "spec.yaml")
	for _, text := range []string{
		"municipalities: [vic]\nprovider: [fcc]\n",
		"municipalities: [vic]\nproviders:\n  - id: fcc\n    municipality: [vic]\n",
		"municipalities: [vic]\nlimits:\n  connection: 3\n",
	} {
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := natsauth.LoadSpec(p); err == nil || !strings.Contains(err.Error(), "not found in type") {
			t.Fatalf("a misspelt field must be refused, got %v for\n%s", err, text)
		}
	}
}
