// Package natsauth generates the accounts and users of the secure
// Assoliment NATS server (deploy/nats/secure) from a short YAML spec.
//
// The platform's streams and services live in one account, SMARTCITY.
// Every provider and every council gets an account of its own, and the
// platform account exports to it, as services, exactly the subjects that
// publisher may publish (its own, in the municipalities it serves) and a
// read-only view of its own dead letters. A publisher's reply subjects
// therefore live in its own account: JetStream's acknowledgement travels
// back through the service import's response mapping and can never land
// in a stream or the JetStream API of the platform.
//
// It writes the server's accounts file (public keys, bcrypt hashes,
// permissions, exports, imports and limits) and, per user, the secrets
// that user logs in with: an NKEY seed, and for providers and councils an
// MQTT password.
package natsauth

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"go.yaml.in/yaml/v3"

	"github.com/assoliment/assoliment/services/platform/config"
)

// PlatformAccount is the account of the streams and the platform's
// services (ingest, evaluator, gateway, operator).
const PlatformAccount = "SMARTCITY"

// DeadLetterAPIPrefix is the JetStream API prefix a provider's or
// council's client uses for the little of the platform's API it may use
// (jetstream.NewWithAPIPrefix, nats.APIPrefix): reading its own dead
// letters, and the main stream's information. Its account imports that
// part of the platform's API under this prefix, apart from its own
// account's API.
const DeadLetterAPIPrefix = "$JS.SMARTCITY.API"

// Roles of users and accounts.
const (
	RoleProvider  = "provider"
	RoleCouncil   = "council"
	RoleIngest    = "ingest"
	RoleEvaluator = "evaluator"
	RoleGateway   = "gateway"
	RoleOperator  = "operator"
)

// Spec is the YAML file natsauth reads (deploy/nats/secure/publishers.yaml).
// Stream and consumer names default to the platform's; set them only when
// the services run with others.
type Spec struct {
	Municipalities []string       `yaml:"municipalities"`
	Providers      []ProviderSpec `yaml:"providers"`
	Limits         LimitsSpec     `yaml:"limits"`

	Stream           string `yaml:"stream"`             // default SMARTCITY
	Consumer         string `yaml:"consumer"`           // default ingest
	DeadLetterStream string `yaml:"dead_letter_stream"` // default SMARTCITY_DLQ
	ImportStream     string `yaml:"import_stream"`      // default SMARTCITY_IMPORT
	AssessmentStream string `yaml:"assessment_stream"`  // default SMARTCITY_ASSESSMENTS
}

// ProviderSpec is one concession provider and the municipalities it serves.
type ProviderSpec struct {
	ID             string   `yaml:"id"`
	Municipalities []string `yaml:"municipalities"`
}

// LimitsSpec overrides the limits of every provider's and council's
// account; an absent key keeps its default (DefaultLimits).
type LimitsSpec struct {
	Connections      int    `yaml:"connections"`
	Subscriptions    int    `yaml:"subscriptions"`
	Payload          string `yaml:"payload"`
	JetStreamStorage string `yaml:"jetstream_storage"`
	DeadLetterCount  int    `yaml:"dead_letter_messages"`
	DeadLetterAge    string `yaml:"dead_letter_age"`
}

// Limits of one provider's or council's account.
type Limits struct {
	// Connections is the most connections of the account at once, NATS and
	// MQTT together; one more is refused ("maximum account active
	// connections exceeded") without touching the others.
	Connections int
	// Subscriptions is the most subscriptions of one connection.
	Subscriptions int
	// Payload is the largest message, headers and body, the broker takes
	// from the account; a larger one closes the connection (NATS
	// "Maximum Payload Violation", MQTT likewise). It equals the main
	// stream's largest message (contract.MaxStoredMessage): the contract's
	// 64 KiB body plus 16 KiB of headers.
	Payload int64
	// JetStreamStorage is the file storage of the account's own JetStream:
	// the server keeps MQTT sessions, retained messages and QoS 1 copies
	// there. It never holds events; they are stored by the platform. The
	// server reserves it at start, for every account, out of its
	// max_file_store.
	JetStreamStorage int64
	// DeadLetterCount and DeadLetterAge bound the publisher's own copy of
	// its dead letters, oldest out first. A count rather than bytes: a
	// byte limit would be reserved out of the server's max_file_store for
	// every publisher; each dead letter is at most the main stream's
	// largest message plus the ingest's headers (contract.MaxDeadLetter).
	DeadLetterCount int
	DeadLetterAge   time.Duration
}

// DefaultLimits are the limits when the spec sets none.
var DefaultLimits = Limits{
	Connections:      20,
	Subscriptions:    100,
	Payload:          80 << 10,
	JetStreamStorage: 8 << 20,
	DeadLetterCount:  10_000,
	DeadLetterAge:    30 * 24 * time.Hour,
}

// Publisher is a provider or a council: an account of its own.
type Publisher struct {
	Account        string // provider-<p> or council-<m>; also its users' name
	Role           string // RoleProvider or RoleCouncil
	ID             string // the provider id or the municipality
	Publisher      string // the publisher token of its subjects: the provider id, or "council"
	Municipalities []string
	// Subjects are what it may publish, each exported to it alone.
	Subjects []string
	// DeadLetters is the stream in the platform account that copies its
	// dead letters, and DeadLetterFilter the subjects copied.
	DeadLetters      string
	DeadLetterFilter string
	// API are the subjects of the platform's JetStream API it may use,
	// below DeadLetterAPIPrefix (PublisherAPI).
	API []string
	// MQTTPasswordHash is the bcrypt hash of its MQTT password (filled by
	// Generate).
	MQTTPasswordHash string
}

// User is one NKEY login with its permissions.
type User struct {
	Name    string // file name of its seed, e.g. provider-fcc-medi-ambient
	Account string
	Role    string
	ID      string // the provider or municipality id; empty for services
	// InboxPrefix is the reply-subject prefix the user's client must set
	// (nats.CustomInboxPrefix): it may subscribe only below it. Empty for
	// the operator, which may subscribe anywhere.
	InboxPrefix string
	Publish     []string // subjects it may publish to
	DenyPublish []string // subjects refused even if allowed above
	Subscribe   []string // subjects it may subscribe to
	PublicKey   string   // filled by Generate
}

// Plan is everything the accounts file says: the users, the publishers'
// accounts with their exports and imports, and their limits.
type Plan struct {
	Users      []User      // services, operator, then one per publisher
	Publishers []Publisher // councils, then providers, each sorted
	Limits     Limits
	// DeadLetterStream is the platform's dead-letter stream, the source of
	// the publishers' copies.
	DeadLetterStream string
}

// User returns the named user.
func (p *Plan) User(name string) (User, bool) {
	i := slices.IndexFunc(p.Users, func(u User) bool { return u.Name == name })
	if i < 0 {
		return User{}, false
	}
	return p.Users[i], true
}

// slugRE is the contract's pattern of municipality and publisher ids.
var slugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// nameRE is a JetStream stream or consumer name without wildcards or dots.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// LoadSpec reads a YAML spec, refusing unknown keys.
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

// Plan checks the spec and returns its accounts and users in a stable
// order. Every problem of the spec is reported at once, each with its key.
func (s Spec) Plan() (*Plan, error) {
	s.defaults()
	var problems []string
	add := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	for key, n := range map[string]string{"stream": s.Stream, "consumer": s.Consumer, "dead_letter_stream": s.DeadLetterStream,
		"import_stream": s.ImportStream, "assessment_stream": s.AssessmentStream} {
		if !nameRE.MatchString(n) {
			add("%s: %q must match %s", key, n, nameRE)
		}
	}
	known := map[string]bool{}
	for i, m := range s.Municipalities {
		switch {
		case !slugRE.MatchString(m):
			add("municipalities[%d]: %q must match %s", i, m, slugRE)
		case known[m]:
			add("municipalities[%d]: %q is listed twice", i, m)
		}
		known[m] = true
	}
	seen := map[string]bool{}
	for i, p := range s.Providers {
		key := fmt.Sprintf("providers[%d]", i)
		switch {
		case p.ID == "":
			add("%s.id: missing (a provider id such as fcc-medi-ambient)", key)
		case !slugRE.MatchString(p.ID):
			add("%s.id: %q must match %s", key, p.ID, slugRE)
		case p.ID == RoleCouncil:
			add(`%s.id: "council" is reserved for the municipalities' councils`, key)
		case seen[p.ID]:
			add("%s.id: provider %q is listed twice", key, p.ID)
		}
		seen[p.ID] = true
		if len(p.Municipalities) == 0 {
			add("%s.municipalities: provider %q serves no municipality; list at least one of municipalities", key, p.ID)
		}
		served := map[string]bool{}
		for j, m := range p.Municipalities {
			switch {
			case !known[m]:
				add("%s.municipalities[%d]: %q is not among municipalities", key, j, m)
			case served[m]:
				add("%s.municipalities[%d]: %q is listed twice", key, j, m)
			}
			served[m] = true
		}
	}
	limits, lp := s.Limits.resolve()
	problems = append(problems, lp...)
	if len(problems) > 0 {
		slices.Sort(problems)
		return nil, fmt.Errorf("natsauth spec:\n  %s", strings.Join(problems, "\n  "))
	}

	plan := &Plan{Limits: limits, DeadLetterStream: s.DeadLetterStream}
	plan.Users = s.serviceUsers()
	municipalities := slices.Sorted(slices.Values(s.Municipalities))
	for _, m := range municipalities {
		plan.Publishers = append(plan.Publishers, s.publisher(RoleCouncil, m, RoleCouncil, []string{m}, []string{"catalog", "measurement", "incident"}))
	}
	providers := slices.Clone(s.Providers)
	slices.SortFunc(providers, func(a, b ProviderSpec) int { return strings.Compare(a.ID, b.ID) })
	for _, p := range providers {
		ms := slices.Sorted(slices.Values(p.Municipalities))
		plan.Publishers = append(plan.Publishers, s.publisher(RoleProvider, p.ID, p.ID, ms, []string{"measurement", "incident"}))
	}
	for _, p := range plan.Publishers {
		u := User{Name: p.Account, Account: p.Account, Role: p.Role, ID: p.ID, InboxPrefix: InboxPrefix(p.Role, p.ID)}
		u.Publish = append(slices.Clone(p.Subjects), p.API...)
		u.Subscribe = []string{u.InboxPrefix + ".>"}
		plan.Users = append(plan.Users, u)
	}
	return plan, nil
}

func (s Spec) publisher(role, id, token string, municipalities, kinds []string) Publisher {
	p := Publisher{Account: role + "-" + id, Role: role, ID: id, Publisher: token, Municipalities: municipalities}
	for _, m := range municipalities {
		for _, k := range kinds {
			p.Subjects = append(p.Subjects, "smartcity."+m+"."+token+"."+k)
		}
	}
	p.DeadLetters = s.DeadLetterStream + "_" + p.Account
	p.API = PublisherAPI(p.DeadLetters, s.Stream)
	if role == RoleCouncil {
		p.DeadLetterFilter = "deadletter." + id + ".council.>"
	} else {
		p.DeadLetterFilter = "deadletter.*." + id + ".>"
	}
	return p
}

// serviceUsers are the platform account's users.
func (s Spec) serviceUsers() []User {
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
		api+"CONSUMER.UNPIN."+cons, // a starting replica takes the consumer over at once
		"$JS.ACK."+cons+".>",       // acknowledgements, progress
		"deadletter.>")
	var evalPub []string
	for _, op := range []string{"CREATE", "UPDATE", "INFO"} {
		evalPub = append(evalPub, api+"STREAM."+op+"."+s.AssessmentStream)
	}
	evalPub = append(evalPub, "assessment.>")
	service := func(role string, publish, deny []string) User {
		p := InboxPrefix(role, "")
		return User{Name: role, Account: PlatformAccount, Role: role, InboxPrefix: p, Publish: publish, DenyPublish: deny, Subscribe: []string{p + ".>"}}
	}
	return []User{
		service(RoleIngest, ingestPub, []string{"smartcity.>", "import.>", "assessment.>"}),
		service(RoleEvaluator, evalPub, []string{"smartcity.>", "import.>", "deadletter.>"}),
		service(RoleGateway, []string{"smartcity.>", api + "INFO", api + "STREAM.INFO." + s.Stream}, nil),
		{Name: RoleOperator, Account: PlatformAccount, Role: RoleOperator, Publish: []string{">"}, Subscribe: []string{">"}},
	}
}

// InboxPrefix is the reply-subject prefix of a user's client:
// _INBOX.provider.<id>, _INBOX.council.<municipality>, or _INBOX.<service>
// for the platform's services (id empty). The broker's answers come back
// below it, and nobody else may subscribe there.
func InboxPrefix(role, id string) string {
	if id == "" {
		return "_INBOX." + role
	}
	return "_INBOX." + role + "." + id
}

// DeadLetterAPI are the subjects, below DeadLetterAPIPrefix, a publisher's
// client uses to read its dead-letter stream: stream information and
// direct get. Its account imports them from the platform account.
func DeadLetterAPI(stream string) []string {
	return []string{DeadLetterAPIPrefix + ".STREAM.INFO." + stream, DeadLetterAPIPrefix + ".DIRECT.GET." + stream}
}

// PublisherAPI are all the subjects, below DeadLetterAPIPrefix, of the
// platform's JetStream API a publisher's client may use: those of its
// dead-letter copy, and the information of the main stream, which clients
// such as the CloudEvents SDK's JetStream binding ask for before they
// publish. None of them changes anything, and none reads another
// publisher's events.
func PublisherAPI(deadLetters, stream string) []string {
	return append(DeadLetterAPI(deadLetters), DeadLetterAPIPrefix+".STREAM.INFO."+stream)
}

func (l LimitsSpec) resolve() (Limits, []string) {
	out := DefaultLimits
	var problems []string
	whole := func(key string, v, lo, hi int, dst *int) {
		switch {
		case v == 0:
		case v < lo || v > hi:
			problems = append(problems, fmt.Sprintf("limits.%s: %d must be a whole number from %d to %d", key, v, lo, hi))
		default:
			*dst = v
		}
	}
	size := func(key, v string, lo, hi int64, dst *int64) {
		if v == "" {
			return
		}
		n, err := humanize.ParseBytes(strings.TrimSpace(v))
		if err != nil || n < uint64(lo) || n > uint64(hi) {
			problems = append(problems, fmt.Sprintf("limits.%s: %q must be a size such as 80KiB or 64MiB, from %s to %s",
				key, v, humanize.IBytes(uint64(lo)), humanize.IBytes(uint64(hi))))
			return
		}
		*dst = int64(n)
	}
	whole("connections", l.Connections, 1, 100_000, &out.Connections)
	whole("subscriptions", l.Subscriptions, 1, 1_000_000, &out.Subscriptions)
	size("payload", l.Payload, 1<<10, 1<<20, &out.Payload)
	size("jetstream_storage", l.JetStreamStorage, 1<<20, 1<<40, &out.JetStreamStorage)
	whole("dead_letter_messages", l.DeadLetterCount, 1, 10_000_000, &out.DeadLetterCount)
	if l.DeadLetterAge != "" {
		d, err := config.ParseDuration(l.DeadLetterAge)
		if err != nil || d < time.Hour || d > 400*24*time.Hour {
			problems = append(problems, fmt.Sprintf("limits.dead_letter_age: %q must be a duration such as 30d or 720h, from 1h to 400d", l.DeadLetterAge))
		} else {
			out.DeadLetterAge = d
		}
	}
	return out, problems
}
