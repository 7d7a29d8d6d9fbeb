// Package natsauth generates the users of the Assoliment NATS server: one
// NKEY user per provider, per municipality's council, and for the ingest
// service, the evaluator and the operator, each with only the permissions
// it needs. It writes the server's accounts file (public keys and
// permissions) and one seed file per user (the secret that user logs in
// with).
package natsauth

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/nats-io/nkeys"
	"go.yaml.in/yaml/v3"
)

// Account is the NATS account every Assoliment user belongs to: the streams
// live there.
const Account = "SMARTCITY"

// Spec lists who may connect. Stream and consumer names default to the
// platform's defaults; set them only when the services run with others.
type Spec struct {
	Municipalities []string `yaml:"municipalities"`
	Providers      []string `yaml:"providers"`

	Stream           string `yaml:"stream"`             // default SMARTCITY
	Consumer         string `yaml:"consumer"`           // default ingest
	DeadLetterStream string `yaml:"dead_letter_stream"` // default SMARTCITY_DLQ
	ImportStream     string `yaml:"import_stream"`      // default SMARTCITY_IMPORT
	AssessmentStream string `yaml:"assessment_stream"`  // default SMARTCITY_ASSESSMENTS
}

// Roles of users.
const (
	RoleProvider  = "provider"
	RoleCouncil   = "council"
	RoleIngest    = "ingest"
	RoleEvaluator = "evaluator"
	RoleOperator  = "operator"
)

// User is one login with its permissions.
type User struct {
	Name string // file name of its seed, e.g. provider-fcc-medi-ambient
	Role string
	ID   string // the provider or municipality id; empty for services
	// InboxPrefix is the reply-subject prefix the user's client must set
	// (nats.CustomInboxPrefix): it may subscribe only below it.
	InboxPrefix string
	Publish     []string // subjects it may publish to
	DenyPublish []string // subjects refused even if allowed above
	Subscribe   []string // subjects it may subscribe to
	PublicKey   string   // filled by Generate
}

// slugRE is the contract's pattern of municipality and publisher ids.
var slugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// nameRE is a JetStream stream or consumer name without wildcards or dots.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// LoadSpec reads a YAML spec.
func LoadSpec(path string) (Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Spec{}, fmt.Errorf("natsauth spec: %w", err)
	}
	var s Spec
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return Spec{}, fmt.Errorf("natsauth spec %s: %w", path, err)
	}
	return s, nil
}

func (s *Spec) defaults() {
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	def(&s.Stream, "SMARTCITY")
	def(&s.Consumer, "ingest")
	def(&s.DeadLetterStream, "SMARTCITY_DLQ")
	def(&s.ImportStream, "SMARTCITY_IMPORT")
	def(&s.AssessmentStream, "SMARTCITY_ASSESSMENTS")
}

// Users returns every user of the spec with its permissions, in a stable
// order: the services, the operator, the councils, then the providers.
// Every problem of the spec is reported at once.
func (s Spec) Users() ([]User, error) {
	s.defaults()
	var problems []string
	for _, n := range []string{s.Stream, s.Consumer, s.DeadLetterStream, s.ImportStream, s.AssessmentStream} {
		if !nameRE.MatchString(n) {
			problems = append(problems, fmt.Sprintf("stream or consumer name %q must match %s", n, nameRE))
		}
	}
	check := func(kind string, ids []string) []string {
		seen := map[string]bool{}
		for _, id := range ids {
			switch {
			case !slugRE.MatchString(id):
				problems = append(problems, fmt.Sprintf("%s %q must match %s", kind, id, slugRE))
			case kind == RoleProvider && id == RoleCouncil:
				problems = append(problems, `provider "council" is reserved for the municipalities' councils`)
			case seen[id]:
				problems = append(problems, fmt.Sprintf("%s %q is listed twice", kind, id))
			}
			seen[id] = true
		}
		out := slices.Clone(ids)
		slices.Sort(out)
		return out
	}
	municipalities := check("municipality", s.Municipalities)
	providers := check(RoleProvider, s.Providers)
	if len(problems) > 0 {
		return nil, fmt.Errorf("natsauth spec:\n  %s", strings.Join(problems, "\n  "))
	}

	api := "$JS.API."
	var ingestPub []string
	for _, st := range []string{s.Stream, s.DeadLetterStream, s.ImportStream} {
		for _, op := range []string{"CREATE", "UPDATE", "INFO"} {
			ingestPub = append(ingestPub, api+"STREAM."+op+"."+st)
		}
	}
	cons := s.Stream + "." + s.Consumer
	ingestPub = append(ingestPub,
		api+"CONSUMER.CREATE."+cons, api+"CONSUMER.CREATE."+cons+".>", // the second carries the filter subject
		api+"CONSUMER.INFO."+cons, api+"CONSUMER.MSG.NEXT."+cons,
		"$JS.ACK."+cons+".>", // acknowledgements, progress
		"deadletter.>")
	var evalPub []string
	for _, op := range []string{"CREATE", "UPDATE", "INFO"} {
		evalPub = append(evalPub, api+"STREAM."+op+"."+s.AssessmentStream)
	}
	evalPub = append(evalPub, "assessment.>")
	services := []string{"_INBOX.>"}
	users := []User{
		{Name: RoleIngest, Role: RoleIngest, Publish: ingestPub,
			DenyPublish: []string{"smartcity.>", "import.>", "assessment.>"}, Subscribe: services},
		{Name: RoleEvaluator, Role: RoleEvaluator, Publish: evalPub,
			DenyPublish: []string{"smartcity.>", "import.>", "deadletter.>"}, Subscribe: services},
		{Name: RoleOperator, Role: RoleOperator, Publish: []string{">"}, Subscribe: []string{">"}},
	}
	for _, m := range municipalities {
		u := User{Name: RoleCouncil + "-" + m, Role: RoleCouncil, ID: m, InboxPrefix: InboxPrefix(RoleCouncil, m)}
		for _, k := range []string{"catalog", "measurement", "incident"} {
			u.Publish = append(u.Publish, "smartcity."+m+".council."+k)
		}
		u.Subscribe = []string{u.InboxPrefix + ".>"}
		users = append(users, u)
	}
	for _, p := range providers {
		u := User{Name: RoleProvider + "-" + p, Role: RoleProvider, ID: p, InboxPrefix: InboxPrefix(RoleProvider, p),
			Publish: []string{"smartcity.*." + p + ".measurement", "smartcity.*." + p + ".incident"}}
		u.Subscribe = []string{u.InboxPrefix + ".>"}
		users = append(users, u)
	}
	return users, nil
}

// InboxPrefix is the reply-subject prefix of a provider's or council's
// client: _INBOX.provider.<id> or _INBOX.council.<municipality>. The
// broker's acknowledgements come back below it, and nobody else may
// subscribe there.
func InboxPrefix(role, id string) string { return "_INBOX." + role + "." + id }

// SeedFile is where Generate keeps the seed of the named user in dir.
func SeedFile(dir, name string) string { return filepath.Join(dir, name+".nk") }

// Generate writes the accounts file conf and one seed file per user into
// seedDir. A seed already in seedDir is kept, so adding a provider does not
// change anybody else's key. It returns the users with their public keys.
func Generate(spec Spec, conf, seedDir string) ([]User, error) {
	users, err := spec.Users()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(seedDir, 0o700); err != nil {
		return nil, fmt.Errorf("seed folder: %w", err)
	}
	for i := range users {
		u := &users[i]
		if u.PublicKey, err = userKey(SeedFile(seedDir, u.Name), *u); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(conf, AccountsConf(users), 0o644); err != nil {
		return nil, fmt.Errorf("accounts file: %w", err)
	}
	return users, nil
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
	fmt.Fprintf(&b, "# NATS NKEY seed of the Assoliment user %s (public key %s).\n", u.Name, pub)
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

// AccountsConf renders the accounts section of the server configuration.
func AccountsConf(users []User) []byte {
	var b bytes.Buffer
	b.WriteString(`# Users of the Assoliment NATS server: public NKEYs and permissions.
# Generated by natsauth (services/platform/cmd/natsauth); edit the spec and
# generate again rather than editing this file. docs/security.md explains
# each permission.
`)
	fmt.Fprintf(&b, "accounts {\n  %s {\n    jetstream: enabled\n    users: [\n", Account)
	for _, u := range users {
		what := u.Role
		if u.ID != "" {
			what += " " + u.ID
		}
		if u.InboxPrefix != "" {
			what += ", inbox prefix " + u.InboxPrefix
		}
		fmt.Fprintf(&b, "      # %s\n      {\n        nkey: %s\n        permissions: {\n", what, u.PublicKey)
		b.WriteString("          publish: {\n            allow: [\n")
		for _, s := range u.Publish {
			fmt.Fprintf(&b, "              %q\n", s)
		}
		b.WriteString("            ]\n")
		if len(u.DenyPublish) > 0 {
			fmt.Fprintf(&b, "            deny: %s\n", list(u.DenyPublish))
		}
		fmt.Fprintf(&b, "          }\n          subscribe: { allow: %s }\n        }\n      }\n", list(u.Subscribe))
	}
	b.WriteString("    ]\n  }\n}\n")
	return b.Bytes()
}

func list(subjects []string) string {
	q := make([]string, len(subjects))
	for i, s := range subjects {
		q[i] = `"` + s + `"`
	}
	return "[" + strings.Join(q, ", ") + "]"
}
