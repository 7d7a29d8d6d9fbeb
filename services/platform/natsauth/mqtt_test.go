package natsauth_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/assoliment/assoliment/services/platform/natsauth/natsauthtest"
)

// mqttClient connects to the secure MQTT listener (TLS) as user.
func mqttClient(t *testing.T, s *natsauthtest.Secure, user, password string, useTLS bool) (mqtt.Client, error) {
	t.Helper()
	ca, err := os.ReadFile(s.Certs.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	o := mqtt.NewClientOptions().SetClientID("test-" + user + "-" + t.Name()).SetUsername(user).SetPassword(password).
		SetConnectTimeout(5 * time.Second).SetAutoReconnect(false).SetConnectRetry(false).SetCleanSession(true)
	if useTLS {
		o.AddBroker("ssl://" + s.MQTTAddr).SetTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	} else {
		o.AddBroker("tcp://" + s.MQTTAddr)
	}
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, context.DeadlineExceeded
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c, nil
}

// publishQoS1 publishes and waits for the PUBACK; false when the
// connection was closed instead.
func publishQoS1(t *testing.T, c mqtt.Client, topic string, payload []byte) bool {
	t.Helper()
	tok := c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(5 * time.Second) {
		return false
	}
	return tok.Error() == nil && c.IsConnected()
}

// TestMQTT publishes as a provider over the secure MQTT listener with the
// generated password: topic smartcity/<m>/<p>/<kind> is stored on subject
// smartcity.<m>.<p>.<kind>; other publishers' topics, unserved
// municipalities and oversized messages are refused; wrong passwords,
// plain MQTT and the MQTT identity on the NATS port are refused.
func TestMQTT(t *testing.T) {
	s := natsauthtest.Start(t, false)
	op := platform(t, s)
	user := "provider-fcc-medi-ambient"
	password := s.MQTTPassword(t, user)

	c, err := mqttClient(t, s, user, password, true)
	if err != nil {
		t.Fatalf("connect over MQTT: %v", err)
	}
	if !publishQoS1(t, c, "smartcity/sabadell/fcc-medi-ambient/measurement", []byte(`{"n":1}`)) {
		t.Fatal("no PUBACK for an allowed publish")
	}
	testEventually(t, "MQTT message stored", func() bool {
		got := stored(t, op, "SMARTCITY")
		return len(got) == 1 && got[0] == "smartcity.sabadell.fcc-medi-ambient.measurement"
	})

	// Another provider's topic, a municipality it does not serve, the
	// council's catalogue: the server drops the message (a QoS 1 publish
	// still gets its PUBACK, as MQTT requires) and stores nothing.
	for _, topic := range []string{
		"smartcity/sabadell/aigues-de-sabadell/measurement",
		"smartcity/granollers/fcc-medi-ambient/measurement",
		"smartcity/sabadell/council/catalog",
		"smartcity/invented-town/fcc-medi-ambient/incident",
		"deadletter/sabadell/fcc-medi-ambient/too_large",
		"$JS/API/STREAM/PURGE/SMARTCITY",
	} {
		publishQoS1(t, c, topic, []byte(`{}`))
	}
	// A message over the account's payload limit closes the connection.
	if publishQoS1(t, c, "smartcity/sabadell/fcc-medi-ambient/measurement", make([]byte, s.Plan.Limits.Payload)) {
		t.Fatal("an oversized MQTT message was acknowledged")
	}
	testEventually(t, "oversized MQTT connection closed", func() bool { return !c.IsConnected() })
	// A well-behaved connection of the same provider is unaffected.
	c2, err := mqttClient(t, s, user, password, true)
	if err != nil {
		t.Fatal(err)
	}
	if !publishQoS1(t, c2, "smartcity/terrassa/fcc-medi-ambient/incident", []byte(`{"n":2}`)) {
		t.Fatal("no PUBACK")
	}
	testEventually(t, "second MQTT message stored", func() bool { return len(stored(t, op, "SMARTCITY")) == 2 })
	time.Sleep(200 * time.Millisecond)
	if got := stored(t, op, "SMARTCITY"); len(got) != 2 || got[1] != "smartcity.terrassa.fcc-medi-ambient.incident" {
		t.Fatalf("stored %v, want only the two allowed messages", got)
	}

	if _, err := mqttClient(t, s, user, password+"x", true); err == nil {
		t.Fatal("a wrong MQTT password was accepted")
	}
	if _, err := mqttClient(t, s, "provider-aigues-de-sabadell", password, true); err == nil {
		t.Fatal("one provider's password opened another provider's account")
	}
	if _, err := mqttClient(t, s, user, password, false); err == nil {
		t.Fatal("plain MQTT was accepted by the secure listener")
	}
	// The MQTT identity is for MQTT only.
	if nc, err := nats.Connect(s.ClientURL(), nats.UserInfo(user, password), nats.RootCAs(s.Certs.CA), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("the MQTT identity logged in over NATS")
	}
}

// The exact guarantee of an MQTT PUBACK (docs/security.md): the server
// sends it once its own MQTT copy of a QoS 1 message is stored in the
// account's JetStream; the delivery into the main stream is a plain
// publish that nobody acknowledges. A message the main stream refuses (here
// one over the stream's max_msg_size, within the account's payload limit)
// is acknowledged to the MQTT client and not stored.
func TestMQTTPubAckDoesNotWaitForTheMainStream(t *testing.T) {
	s := natsauthtest.Start(t, false)
	ctx := context.Background()
	ingest := connect(t, s, "ingest")
	if _, err := ingest.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "SMARTCITY", Subjects: []string{"smartcity.>"}, MaxMsgSize: 1024}); err != nil {
		t.Fatal(err)
	}
	c, err := mqttClient(t, s, "council-sabadell", s.MQTTPassword(t, "council-sabadell"), true)
	if err != nil {
		t.Fatal(err)
	}
	if !publishQoS1(t, c, "smartcity/sabadell/council/measurement", []byte(strings.Repeat("x", 2048))) {
		t.Fatal("no PUBACK")
	}
	if !publishQoS1(t, c, "smartcity/sabadell/council/measurement", []byte(`{"small":true}`)) {
		t.Fatal("no PUBACK")
	}
	op := connect(t, s, "operator")
	testEventually(t, "small message stored", func() bool { return len(stored(t, op.js, "SMARTCITY")) == 1 })
	time.Sleep(200 * time.Millisecond)
	if n := len(stored(t, op.js, "SMARTCITY")); n != 1 {
		t.Fatalf("stored %d messages, want the small one only", n)
	}
}
