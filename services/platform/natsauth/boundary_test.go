package natsauth_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/assoliment/assoliment/services/platform/natsauth"
	"github.com/assoliment/assoliment/services/platform/natsauth/natsauthtest"
)

// platform sets up the streams of the platform account as the services do
// (the ingest its three, the evaluator its own), then the publishers'
// dead-letter copies as the operator, and returns the operator's JetStream.
func platform(t *testing.T, s *natsauthtest.Secure) jetstream.JetStream {
	t.Helper()
	ctx := context.Background()
	ingest := connect(t, s, "ingest")
	for _, sc := range []jetstream.StreamConfig{
		{Name: "SMARTCITY", Subjects: []string{"smartcity.>"}, DenyPurge: true, DenyDelete: true, MaxMsgSize: 80 << 10},
		{Name: "SMARTCITY_DLQ", Subjects: []string{"deadletter.>"}, DenyPurge: true, DenyDelete: true},
		{Name: "SMARTCITY_IMPORT", Subjects: []string{"import.smartcity.>"}},
	} {
		if _, err := ingest.js.CreateOrUpdateStream(ctx, sc); err != nil {
			t.Fatalf("stream %s: %v", sc.Name, err)
		}
	}
	evaluator := connect(t, s, "evaluator")
	if _, err := evaluator.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "SMARTCITY_ASSESSMENTS", Subjects: []string{"assessment.>"}}); err != nil {
		t.Fatal(err)
	}
	op := connect(t, s, "operator")
	if _, err := natsauth.EnsureDeadLetterStreams(ctx, op.js, s.Plan); err != nil {
		t.Fatal(err)
	}
	return op.js
}

// stored lists the subjects of every message in stream, in order.
func stored(t *testing.T, js jetstream.JetStream, stream string) []string {
	t.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		subjects = append(subjects, m.Subject)
	}
	return subjects
}

// A provider publishing on its own subject with a reply subject chosen to
// hit a stream or the JetStream API of the platform: the acknowledgement
// goes back to the provider's own account, where none of those exist, so
// nothing foreign is stored and nothing is purged; the provider still gets
// the acknowledgement of every ordinary publish.
func TestReplySubjectsReachNoStream(t *testing.T) {
	s := natsauthtest.Start(t, false)
	op := platform(t, s)
	ctx := context.Background()
	fcc := connect(t, s, "provider-fcc-medi-ambient")
	aigues := connect(t, s, "provider-aigues-de-sabadell")
	ingest := connect(t, s, "ingest")

	// Something to lose: another provider's event and a dead letter.
	aigues.acked(t, "smartcity.sabadell.aigues-de-sabadell.measurement", "SMARTCITY")
	ingest.acked(t, "deadletter.sabadell.aigues-de-sabadell.malformed_json", "SMARTCITY_DLQ")

	own := "smartcity.sabadell.fcc-medi-ambient.measurement"
	targets := []string{
		"smartcity.terrassa.aigues-de-sabadell.measurement", // another provider, another municipality
		"smartcity.sabadell.aigues-de-sabadell.measurement", // another provider, a municipality both serve
		"smartcity.granollers.fcc-medi-ambient.measurement", // itself, in a municipality it does not serve
		"smartcity.sabadell.council.catalog",
		"import.smartcity.sabadell.council.catalog",
		"assessment.sabadell",
		"deadletter.sabadell.aigues-de-sabadell.malformed_json",
		"deadletter.malformed_json",
		"$JS.API.STREAM.PURGE.SMARTCITY",
		"$JS.API.STREAM.PURGE.SMARTCITY_DLQ",
		"$JS.API.STREAM.DELETE.SMARTCITY",
		"$JS.API.STREAM.MSG.DELETE.SMARTCITY",
		"$JS.API.STREAM.UPDATE.SMARTCITY",
		"$JS.API.CONSUMER.CREATE.SMARTCITY.spy",
		"$JS.API.STREAM.PURGE.SMARTCITY_DLQ_provider-aigues-de-sabadell",
		"$JS.SMARTCITY.API.DIRECT.GET.SMARTCITY_DLQ_provider-fcc-medi-ambient",
		own, // the subject it publishes on: the answer does not re-enter the export it answers
		"smartcity.terrassa.fcc-medi-ambient.incident", // its own other subject
	}
	for _, reply := range targets {
		if err := fcc.nc.PublishMsg(&nats.Msg{Subject: own, Reply: reply, Data: []byte(`{"reply":"` + reply + `"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	// Replies reserved by the server (consumer acknowledgements, service
	// import replies) are refused outright.
	for _, reply := range []string{"$JS.ACK.SMARTCITY.ingest.1.1.1.1.1.0", "_R_.abc.def"} {
		if err := fcc.nc.PublishMsg(&nats.Msg{Subject: own, Reply: reply, Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
		fcc.violation(t, "publish with reply of", reply)
	}
	// The acknowledgement still reaches the provider on its own inbox.
	fcc.acked(t, own, "SMARTCITY")
	if err := fcc.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // let anything misrouted land before counting

	main := stored(t, op, "SMARTCITY")
	if main[0] != "smartcity.sabadell.aigues-de-sabadell.measurement" {
		t.Fatalf("the main stream lost its first message: %v", main)
	}
	var foreign []string
	for _, subj := range main[1:] {
		if !slices.Contains(s.Users["provider-fcc-medi-ambient"].Publish, subj) {
			foreign = append(foreign, subj)
		}
	}
	// One publish per target, one acknowledged publish, the two refused
	// ones never stored, and one acknowledgement stored on the provider's
	// own other subject, as if it had published it there itself.
	if len(foreign) > 0 || len(main) != 1+len(targets)+1+1 || !slices.Contains(main, "smartcity.terrassa.fcc-medi-ambient.incident") {
		t.Fatalf("main stream holds %d messages, foreign subjects %v:\n%v", len(main), foreign, main)
	}
	if dlq := stored(t, op, "SMARTCITY_DLQ"); len(dlq) != 1 {
		t.Fatalf("dead-letter stream %v, want the one dead letter", dlq)
	}
	for _, stream := range []string{"SMARTCITY_IMPORT", "SMARTCITY_ASSESSMENTS", "SMARTCITY_DLQ_provider-fcc-medi-ambient"} {
		if got := stored(t, op, stream); len(got) != 0 {
			t.Fatalf("%s holds %v, want nothing", stream, got)
		}
	}
	testEventually(t, "the other provider's dead-letter copy", func() bool {
		return len(stored(t, op, "SMARTCITY_DLQ_provider-aigues-de-sabadell")) == 1
	})
	if _, err := op.Consumer(ctx, "SMARTCITY", "spy"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("a consumer was created through a reply subject: %v", err)
	}
}

// Each provider publishes only for the municipalities it serves, and a
// council only for its own; an invented municipality is refused by the
// broker, and so is every subject of a municipality a publisher does not
// serve.
func TestMunicipalityScoping(t *testing.T) {
	s := natsauthtest.Start(t, false)
	op := platform(t, s)
	for _, p := range s.Plan.Publishers {
		c := connect(t, s, p.Account)
		served := map[string]bool{}
		for _, m := range p.Municipalities {
			served[m] = true
			c.acked(t, "smartcity."+m+"."+p.Publisher+".measurement", "SMARTCITY")
		}
		for _, m := range []string{"sabadell", "terrassa", "granollers", "invented-town", "x"} {
			if !served[m] {
				c.refused(t, "smartcity."+m+"."+p.Publisher+".measurement")
				c.refused(t, "smartcity."+m+"."+p.Publisher+".incident")
			}
		}
	}
	for _, subj := range stored(t, op, "SMARTCITY") {
		m := strings.Split(subj, ".")[1]
		if !slices.Contains([]string{"sabadell", "terrassa", "granollers"}, m) {
			t.Fatalf("stored for municipality %q: %s", m, subj)
		}
	}
}

// A provider that opens connections up to its account's limit is refused
// the next one, while another provider connects and publishes as usual; a
// message over the account's payload limit is refused by the broker.
func TestAccountLimits(t *testing.T) {
	s := natsauthtest.Start(t, false)
	platform(t, s)
	limit := s.Plan.Limits.Connections
	for i := range limit {
		if _, err := s.Dial(t, "provider-fcc-medi-ambient"); err != nil {
			t.Fatalf("connection %d of %d: %v", i+1, limit, err)
		}
	}
	if nc, err := s.Dial(t, "provider-fcc-medi-ambient"); err == nil {
		nc.Close()
		t.Fatalf("connection %d accepted over the limit of %d", limit+1, limit)
	} else if !strings.Contains(strings.ToLower(err.Error()), "maximum account active connections exceeded") {
		t.Fatalf("want the account connection limit, got %v", err)
	}
	aigues := connect(t, s, "provider-aigues-de-sabadell")
	aigues.acked(t, "smartcity.sabadell.aigues-de-sabadell.measurement", "SMARTCITY")

	// The broker announces the account's limit and enforces it even for a
	// client that ignores the announcement.
	if got := aigues.nc.MaxPayload(); got != s.Plan.Limits.Payload {
		t.Fatalf("announced max payload %d, want %d", got, s.Plan.Limits.Payload)
	}
	if err := aigues.nc.Publish("smartcity.sabadell.aigues-de-sabadell.measurement", make([]byte, s.Plan.Limits.Payload+1)); !errors.Is(err, nats.ErrMaxPayload) {
		t.Fatalf("want ErrMaxPayload, got %v", err)
	}
	rawPublishOverLimit(t, s, "provider-aigues-de-sabadell", "smartcity.sabadell.aigues-de-sabadell.measurement", int(s.Plan.Limits.Payload)+1)
	// The platform's own users keep the server's 1 MiB.
	ingest := connect(t, s, "ingest")
	if got := ingest.nc.MaxPayload(); got != 1<<20 {
		t.Fatalf("ingest max payload %d", got)
	}
}

func testEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Dead letters as the ingest writes them; each provider and council reads
// its own with its own credentials, and nobody else's.
func TestReadOwnDeadLetters(t *testing.T) {
	s := natsauthtest.Start(t, false)
	ctx := context.Background()
	ingest := connect(t, s, "ingest")
	if _, err := ingest.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "SMARTCITY_DLQ", Subjects: []string{"deadletter.>"}}); err != nil {
		t.Fatal(err)
	}
	letters := map[string][]string{ // account → its dead-letter subjects
		"provider-fcc-medi-ambient":   {"deadletter.sabadell.fcc-medi-ambient.malformed_json", "deadletter.terrassa.fcc-medi-ambient.too_large"},
		"provider-aigues-de-sabadell": {"deadletter.sabadell.aigues-de-sabadell.subject_mismatch"},
		"council-sabadell":            {"deadletter.sabadell.council.invalid_field"},
		"council-terrassa":            nil,
	}
	// Written before the copies exist: a new copy starts with them.
	for _, subj := range []string{
		"deadletter.sabadell.fcc-medi-ambient.malformed_json", "deadletter.sabadell.aigues-de-sabadell.subject_mismatch",
		"deadletter.unknown.unknown.not_cloudevent", "deadletter.sabadell.council.invalid_field",
	} {
		ingest.acked(t, subj, "SMARTCITY_DLQ")
	}
	op := connect(t, s, "operator")
	if _, err := natsauth.EnsureDeadLetterStreams(ctx, op.js, s.Plan); err != nil {
		t.Fatal(err)
	}
	ingest.acked(t, "deadletter.terrassa.fcc-medi-ambient.too_large", "SMARTCITY_DLQ")

	for account, want := range letters {
		c := connect(t, s, account)
		var got []string
		testEventually(t, account+" dead letters", func() bool {
			got = nil
			d, err := natsauth.OpenDeadLetters(ctx, c.nc, account, "")
			if err != nil {
				t.Fatal(err)
			}
			for m, err := range d.All(ctx, 1) {
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, m.Subject)
			}
			return len(got) == len(want)
		})
		if !slices.Equal(got, want) {
			t.Fatalf("%s reads %v, want %v", account, got, want)
		}
	}

	// Another publisher's copy, or the platform's stream, are out of reach.
	fcc := connect(t, s, "provider-fcc-medi-ambient")
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := natsauth.OpenDeadLetters(short, fcc.nc, "provider-aigues-de-sabadell", ""); err == nil {
		t.Fatal("a provider opened another provider's dead letters")
	}
	fcc.violation(t, "publish to", "$JS.SMARTCITY.API.STREAM.INFO.SMARTCITY_DLQ_provider-aigues-de-sabadell")
	for _, subj := range []string{
		"$JS.SMARTCITY.API.DIRECT.GET.SMARTCITY_DLQ", "$JS.SMARTCITY.API.STREAM.INFO.SMARTCITY_DLQ",
		"$JS.SMARTCITY.API.CONSUMER.CREATE.SMARTCITY_DLQ_provider-fcc-medi-ambient",
		"$JS.SMARTCITY.API.STREAM.PURGE.SMARTCITY_DLQ_provider-fcc-medi-ambient",
		"$JS.API.DIRECT.GET.SMARTCITY_DLQ", "deadletter.sabadell.fcc-medi-ambient.malformed_json",
	} {
		fcc.refused(t, subj)
	}
	fcc.subscribeRefused(t, "deadletter.>")
	// A direct get asking for every subject of its copy still yields only
	// its own dead letters.
	js, err := jetstream.NewWithAPIPrefix(fcc.nc, natsauth.DeadLetterAPIPrefix)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, natsauth.DeadLetterCopy("provider-fcc-medi-ambient"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetMsg(ctx, 1, jetstream.WithGetMsgSubject("deadletter.sabadell.aigues-de-sabadell.>"))
	if !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Fatalf("another provider's dead letter read through the own copy: %v %v", m, err)
	}
}

func ExampleOpenDeadLetters() {
	// As a provider: its seed, its inbox prefix, TLS.
	auth, _ := nats.NkeyOptionFromSeed("provider-fcc-medi-ambient.nk")
	nc, err := nats.Connect("tls://nats.example.cat:4222", auth,
		nats.CustomInboxPrefix(natsauth.InboxPrefix(natsauth.RoleProvider, "fcc-medi-ambient")))
	if err != nil {
		return
	}
	defer nc.Close()
	ctx := context.Background()
	d, err := natsauth.OpenDeadLetters(ctx, nc, natsauth.Account(natsauth.RoleProvider, "fcc-medi-ambient"), "")
	if err != nil {
		return
	}
	for m, err := range d.All(ctx, 1) {
		if err != nil {
			return
		}
		fmt.Println(m.Sequence, m.Subject, m.Header.Get("Smartcity-Reason"))
	}
}

// rawPublishOverLimit speaks the NATS protocol by hand, as a client that
// ignores the announced limit would, and expects the broker to refuse a
// message of size bytes and close the connection.
func rawPublishOverLimit(t *testing.T, s *natsauthtest.Secure, user, subject string, size int) {
	t.Helper()
	seed, err := os.ReadFile(s.Seed(t, user))
	if err != nil {
		t.Fatal(err)
	}
	kp, err := nkeys.ParseDecoratedNKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	conn, err := net.DialTimeout("tcp", s.Addr().String(), 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "INFO ") {
		t.Fatalf("INFO %q: %v", line, err)
	}
	var info struct {
		Nonce string `json:"nonce"`
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(strings.TrimSpace(line), "INFO ")), &info); err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(s.Certs.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	tc := tls.Client(conn, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	sig, err := kp.Sign([]byte(info.Nonce))
	if err != nil {
		t.Fatal(err)
	}
	connect, _ := json.Marshal(map[string]any{"nkey": pub, "sig": base64.RawURLEncoding.EncodeToString(sig),
		"verbose": false, "pedantic": false, "tls_required": true, "protocol": 1})
	r := bufio.NewReader(tc)
	fmt.Fprintf(tc, "CONNECT %s\r\nPING\r\n", connect)
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("before PONG: %v", err)
		}
		if strings.HasPrefix(l, "PONG") {
			break
		}
		if strings.HasPrefix(l, "-ERR") {
			t.Fatalf("login: %s", l)
		}
	}
	fmt.Fprintf(tc, "PUB %s %d\r\n%s\r\nPING\r\n", subject, size, strings.Repeat("x", size))
	rest, _ := io.ReadAll(r)
	if !strings.Contains(string(rest), "Maximum Payload Violation") || strings.Contains(string(rest), "PONG") {
		t.Fatalf("a message of %d bytes must be refused and the connection closed, got %q", size, rest)
	}
}
