package deploytest

import (
	"encoding/xml"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

// clusterXML is what deploy/clickhouse/cluster/cluster.xml says of the
// cluster: its name, replicas, Keeper nodes and macros.
type clusterXML struct {
	Remote struct {
		Clusters []struct {
			XMLName xml.Name
			Shards  []struct {
				Internal bool `xml:"internal_replication"`
				Replicas []struct {
					Host string `xml:"host"`
					Port int    `xml:"port"`
				} `xml:"replica"`
			} `xml:"shard"`
		} `xml:",any"`
	} `xml:"remote_servers"`
	Keeper []struct {
		Host string `xml:"host"`
		Port int    `xml:"port"`
	} `xml:"zookeeper>node"`
	Macros struct {
		Shard   string `xml:"shard"`
		Replica struct {
			FromEnv string `xml:"from_env,attr"`
		} `xml:"replica"`
	} `xml:"macros"`
	Interserver struct {
		FromEnv string `xml:"from_env,attr"`
	} `xml:"interserver_http_host"`
}

type keeperXML struct {
	Server struct {
		TCPPort  int `xml:"tcp_port"`
		ServerID struct {
			FromEnv string `xml:"from_env,attr"`
		} `xml:"server_id"`
		Raft []struct {
			ID       int    `xml:"id"`
			Hostname string `xml:"hostname"`
			Port     int    `xml:"port"`
		} `xml:"raft_configuration>server"`
	} `xml:"keeper_server"`
}

func readXML(t *testing.T, v any, path ...string) {
	t.Helper()
	b, err := os.ReadFile(repoPath(t, path...))
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", strings.Join(path, "/"), err)
	}
}

func loadHA(t *testing.T) *types.Project {
	t.Helper()
	project, err := loadComposeFiles(t, composeEnv(t), nil, "docker-compose.ha.yml")
	if err != nil {
		t.Fatalf("docker-compose.ha.yml does not load: %v", err)
	}
	return project
}

// servicesNamed lists the project's services whose names match re, sorted.
func servicesNamed(project *types.Project, re string) []string {
	var out []string
	for name := range project.Services {
		if regexp.MustCompile(re).MatchString(name) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// TestComposeHANATS: three nodes, each running the shipped cluster
// configuration under its own service name, whose routes are exactly those
// nodes; every client is given all three, and the ingest keeps every
// stream on all three.
func TestComposeHANATS(t *testing.T) {
	project := loadHA(t)
	nodes := servicesNamed(project, `^nats-\d$`)
	if len(nodes) != 3 {
		t.Fatalf("NATS nodes %v, want three", nodes)
	}
	conf, err := os.ReadFile(repoPath(t, "deploy", "nats", "cluster", "nats-server.conf"))
	if err != nil {
		t.Fatal(err)
	}
	routes := regexp.MustCompile(`nats://([a-z0-9-]+):6222`).FindAllStringSubmatch(string(conf), -1)
	var routed []string
	for _, r := range routes {
		routed = append(routed, r[1])
	}
	sort.Strings(routed)
	if !slices.Equal(routed, nodes) {
		t.Errorf("deploy/nats/cluster routes to %v, compose runs %v", routed, nodes)
	}
	for _, n := range nodes {
		svc := project.Services[n]
		if got := serviceEnvironment(svc)["NATS_SERVER_NAME"]; got != n {
			t.Errorf("%s: NATS_SERVER_NAME %q, want %q", n, got, n)
		}
		if src := mountSource(svc, "/etc/nats/nats-server.conf"); src != repoPath(t, "deploy", "nats", "cluster", "nats-server.conf") {
			t.Errorf("%s: runs %s, want deploy/nats/cluster/nats-server.conf", n, src)
		}
	}
	for _, name := range []string{"ingest-1", "ingest-2", "evaluator", "gateway-1", "gateway-2"} {
		env := serviceEnvironment(project.Services[name])
		for _, n := range nodes {
			if !strings.Contains(env["NATS_URL"], "nats://"+n+":4222") {
				t.Errorf("%s: NATS_URL %q lacks %s", name, env["NATS_URL"], n)
			}
		}
		keepsStreams := strings.HasPrefix(name, "ingest") || name == "evaluator"
		if keepsStreams && env["STREAM_REPLICAS"] != "3" {
			t.Errorf("%s: STREAM_REPLICAS %q, want 3", name, env["STREAM_REPLICAS"])
		}
	}
}

// TestComposeHAClickHouse: two replicas of one shard, each running the
// cluster configuration with its own replica macro and host name; the
// configuration's replicas and Keeper nodes are exactly the compose
// services; three Keeper nodes with the ids of the Raft configuration; the
// ingest and the evaluator given the cluster's name and both replicas.
func TestComposeHAClickHouse(t *testing.T) {
	project := loadHA(t)
	var cl clusterXML
	readXML(t, &cl, "deploy", "clickhouse", "cluster", "cluster.xml")
	if len(cl.Remote.Clusters) != 1 || len(cl.Remote.Clusters[0].Shards) != 1 || !cl.Remote.Clusters[0].Shards[0].Internal {
		t.Fatalf("cluster.xml: want one cluster of one shard with internal_replication, got %+v", cl.Remote)
	}
	name := cl.Remote.Clusters[0].XMLName.Local
	var replicas []string
	for _, r := range cl.Remote.Clusters[0].Shards[0].Replicas {
		replicas = append(replicas, fmt.Sprintf("%s:%d", r.Host, r.Port))
	}
	servers := servicesNamed(project, `^clickhouse-\d$`)
	if len(servers) != 2 {
		t.Fatalf("ClickHouse replicas %v, want two", servers)
	}
	var want []string
	for _, s := range servers {
		want = append(want, s+":9000")
	}
	if !slices.Equal(replicas, want) {
		t.Errorf("cluster.xml lists replicas %v, compose runs %v", replicas, want)
	}
	if cl.Macros.Shard == "" || cl.Macros.Replica.FromEnv != "CLICKHOUSE_REPLICA" || cl.Interserver.FromEnv != "CLICKHOUSE_REPLICA" {
		t.Errorf("cluster.xml: macros %+v, interserver host %+v; want {shard} and {replica} and the host from CLICKHOUSE_REPLICA", cl.Macros, cl.Interserver)
	}
	for _, s := range servers {
		svc := project.Services[s]
		if got := serviceEnvironment(svc)["CLICKHOUSE_REPLICA"]; got != s || svc.Hostname != s {
			t.Errorf("%s: CLICKHOUSE_REPLICA %q, host name %q; want both %q", s, got, svc.Hostname, s)
		}
		if src := mountSource(svc, "/etc/clickhouse-server/config.d/cluster.xml"); src != repoPath(t, "deploy", "clickhouse", "cluster", "cluster.xml") {
			t.Errorf("%s: cluster configuration from %q", s, src)
		}
		for _, k := range []string{"keeper-1", "keeper-2", "keeper-3"} {
			if _, ok := svc.DependsOn[k]; !ok {
				t.Errorf("%s: does not wait for %s", s, k)
			}
		}
	}

	keepers := servicesNamed(project, `^keeper-\d$`)
	var listed []string
	for _, k := range cl.Keeper {
		listed = append(listed, fmt.Sprintf("%s:%d", k.Host, k.Port))
	}
	var kp keeperXML
	readXML(t, &kp, "deploy", "clickhouse", "cluster", "keeper.xml")
	var wantKeepers []string
	for _, k := range keepers {
		wantKeepers = append(wantKeepers, fmt.Sprintf("%s:%d", k, kp.Server.TCPPort))
	}
	if len(keepers) != 3 || !slices.Equal(listed, wantKeepers) {
		t.Errorf("cluster.xml reaches Keeper at %v, compose runs %v", listed, wantKeepers)
	}
	if kp.Server.ServerID.FromEnv != "KEEPER_SERVER_ID" || len(kp.Server.Raft) != len(keepers) {
		t.Fatalf("keeper.xml: server id %+v, Raft %+v", kp.Server.ServerID, kp.Server.Raft)
	}
	for _, r := range kp.Server.Raft {
		svc, ok := project.Services[r.Hostname]
		if !ok {
			t.Errorf("keeper.xml: Raft member %s is not a compose service", r.Hostname)
			continue
		}
		if got := serviceEnvironment(svc)["KEEPER_SERVER_ID"]; got != fmt.Sprint(r.ID) || svc.Hostname != r.Hostname {
			t.Errorf("%s: KEEPER_SERVER_ID %q, host name %q; keeper.xml says id %d", r.Hostname, got, svc.Hostname, r.ID)
		}
		if src := mountSource(svc, "/etc/clickhouse-keeper/keeper_config.xml"); src != repoPath(t, "deploy", "clickhouse", "cluster", "keeper.xml") {
			t.Errorf("%s: Keeper configuration from %q", r.Hostname, src)
		}
	}

	for _, s := range []string{"ingest-1", "ingest-2", "evaluator"} {
		env := serviceEnvironment(project.Services[s])
		if env["CLICKHOUSE_CLUSTER"] != name {
			t.Errorf("%s: CLICKHOUSE_CLUSTER %q, want %q (cluster.xml)", s, env["CLICKHOUSE_CLUSTER"], name)
		}
		if got := strings.Split(env["CLICKHOUSE_ADDR"], ","); !slices.Equal(got, want) {
			t.Errorf("%s: CLICKHOUSE_ADDR %v, want every replica %v", s, got, want)
		}
	}
	for _, s := range []string{"ingest-1", "ingest-2"} {
		for _, dep := range append(servers, servicesNamed(project, `^nats-\d$`)...) {
			if d, ok := project.Services[s].DependsOn[dep]; !ok || d.Condition != types.ServiceConditionHealthy {
				t.Errorf("%s: does not wait for a healthy %s", s, dep)
			}
		}
	}
	if host := serviceEnvironment(project.Services["grafana"])["CLICKHOUSE_HOST"]; !slices.Contains(servers, host) {
		t.Errorf("grafana: CLICKHOUSE_HOST %q is not a ClickHouse replica", host)
	}
}
