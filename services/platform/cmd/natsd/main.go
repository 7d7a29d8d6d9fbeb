// Command natsd runs an embedded NATS server with JetStream for local use
// (`make run`) and tests: the same server as nats-server, built from its Go
// module, so a machine with only Go can run the platform. Like
// deploy/nats/nats-server.conf it has no authentication, keeps the
// JetStream API in strict mode, and listens for MQTT clients on
// 127.0.0.1:1883 (--mqtt-addr "" turns that off).
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/assoliment/assoliment/services/platform/config"
)

func main() {
	var addr, mqttAddr, store, conf string
	s := config.New("natsd", os.Getenv)
	s.String(&addr, "addr", "NATSD_ADDR", "127.0.0.1:4222", "client address", config.HostPort)
	s.String(&mqttAddr, "mqtt-addr", "NATSD_MQTT_ADDR", "127.0.0.1:1883", "MQTT listener address (plain MQTT; empty for none)", func(v string) error {
		if v == "" {
			return nil
		}
		return config.HostPort(v)
	})
	s.String(&store, "store", "NATSD_STORE", ".data/nats", "JetStream storage folder", nil)
	s.String(&conf, "config", "NATSD_CONFIG", "", "nats-server configuration file (overrides addr and store when it sets them)", nil)
	if err := s.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Print(s.Usage())
			return
		}
		fmt.Fprintln(os.Stderr, "natsd:", err)
		os.Exit(2)
	}
	opts := &server.Options{}
	if conf != "" {
		var err error
		if opts, err = server.ProcessConfigFile(conf); err != nil {
			fmt.Fprintln(os.Stderr, "natsd:", err)
			os.Exit(2)
		}
	}
	host, port, _ := net.SplitHostPort(addr)
	if opts.Host == "" {
		opts.Host = host
	}
	if opts.Port == 0 {
		opts.Port, _ = strconv.Atoi(port)
	}
	opts.JetStream = true
	// Strict mode of the JetStream API: a request with unknown fields is
	// refused rather than half-understood.
	opts.NoJetStreamStrict = false
	if mqttAddr != "" && opts.MQTT.Port == 0 {
		h, p, _ := net.SplitHostPort(mqttAddr)
		opts.MQTT.Host = h
		opts.MQTT.Port, _ = strconv.Atoi(p)
	}
	if opts.MQTT.Port != 0 && opts.ServerName == "" {
		opts.ServerName = "assoliment-natsd" // MQTT requires a server name
	}
	if opts.StoreDir == "" {
		opts.StoreDir = store
	}
	opts.NoSigs = true
	srv, err := server.NewServer(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "natsd:", err)
		os.Exit(1)
	}
	srv.ConfigureLogger()
	srv.Start()
	if !srv.ReadyForConnections(15 * time.Second) {
		fmt.Fprintln(os.Stderr, "natsd: not ready within 15s")
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	srv.Shutdown()
	srv.WaitForShutdown()
}
