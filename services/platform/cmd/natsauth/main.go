// Command natsauth generates the NKEY users of the secure NATS server
// configuration (deploy/nats/secure): the accounts file the server includes,
// with each user's public key and permissions, and one seed file per user
// to hand to that user. Seeds already present are kept, so it can run again
// after adding a municipality or a provider.
//
//	go run ./cmd/natsauth --spec ../../deploy/nats/secure/publishers.yaml \
//	    --conf ../../deploy/nats/secure/accounts.conf --seeds /secure/place/seeds
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/assoliment/assoliment/services/platform/config"
	"github.com/assoliment/assoliment/services/platform/natsauth"
)

func main() {
	var specFile, conf, seeds, municipalities, providers string
	s := config.New("natsauth", os.Getenv)
	s.String(&specFile, "spec", "NATSAUTH_SPEC", "", "YAML file listing municipalities and providers (optional)", nil)
	s.String(&municipalities, "municipalities", "NATSAUTH_MUNICIPALITIES", "", "comma-separated municipality ids, added to the spec's", nil)
	s.String(&providers, "providers", "NATSAUTH_PROVIDERS", "", "comma-separated provider ids, added to the spec's", nil)
	s.String(&conf, "conf", "NATSAUTH_CONF", "accounts.conf", "accounts file to write (included by nats-server.conf)", nil)
	s.String(&seeds, "seeds", "NATSAUTH_SEEDS", "seeds", "folder of the users' seed files (kept when present)", nil)
	if err := s.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Print(s.Usage())
			return
		}
		fmt.Fprintln(os.Stderr, "natsauth:", err)
		os.Exit(2)
	}
	var spec natsauth.Spec
	if specFile != "" {
		var err error
		if spec, err = natsauth.LoadSpec(specFile); err != nil {
			fmt.Fprintln(os.Stderr, "natsauth:", err)
			os.Exit(2)
		}
	}
	spec.Municipalities = append(spec.Municipalities, split(municipalities)...)
	spec.Providers = append(spec.Providers, split(providers)...)
	users, err := natsauth.Generate(spec, conf, seeds)
	if err != nil {
		fmt.Fprintln(os.Stderr, "natsauth:", err)
		os.Exit(1)
	}
	for _, u := range users {
		fmt.Printf("%-40s %s  %s\n", u.Name, u.PublicKey, natsauth.SeedFile(seeds, u.Name))
	}
	fmt.Printf("wrote %s; give each user only its own seed file\n", conf)
}

func split(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
