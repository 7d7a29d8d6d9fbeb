package storage

import (
	"regexp"
	"slices"
	"strings"
)

// Access is one privilege on one table, as ClickHouse's SQL access control
// names them.
type Access struct{ Table, Privilege string }

// EvaluatorAccess is every privilege the evaluator's statements need, by
// table: what its ClickHouse user is granted
// (deploy/clickhouse/users.d/services.xml), and all it may be. A name
// ending in * names every table with that prefix; "*" the database. The
// CREATE rights only let its start-up check (CREATE … IF NOT EXISTS) pass
// where the ingest has applied the migrations.
var EvaluatorAccess = map[string][]string{
	"*":                     {"CREATE DATABASE"},
	SchemaMigrations:        {"SELECT", "CREATE TABLE"},
	Catalog:                 {"SELECT"},
	Measurements:            {"SELECT"},
	Incidents:               {"SELECT"},
	Duplicates:              {"SELECT"},
	MeasurementDays:         {"SELECT"},
	IncidentKeys:            {"SELECT"},
	IncidentNames:           {"SELECT"},
	IncidentTimes:           {"SELECT"},
	IncidentOpen:            {"SELECT"},
	RollupCoverage:          {"SELECT"},
	WholeDayCounts:          {"SELECT", "INSERT", "ALTER DELETE"}, // ALTER DELETE: DROP PARTITION of days gone
	MaturityChanges:         {"SELECT", "INSERT", "CREATE TABLE"},
	TargetTablePrefix + "*": {"SELECT", "INSERT", "CREATE TABLE", "DROP TABLE"},
}

// IngestAccess is every privilege the ingest's statements need, as
// EvaluatorAccess: it applies the migrations (tables, materialized views,
// added columns), stores events, looks identities up, merges a partition
// holding a measurement stored twice, and builds its identity index
// (tables filled under another name, renamed into place, dropped once no
// copy can be accepted for their month).
var IngestAccess = map[string][]string{
	"*":                       {"CREATE DATABASE", "SELECT", "INSERT", "CREATE TABLE", "CREATE VIEW", "ALTER ADD COLUMN", "OPTIMIZE"},
	IdentityTablePrefix + "*": {"DROP TABLE"},
}

var (
	renameRE  = regexp.MustCompile(`(?i)^\s*RENAME\s+TABLE\s+([A-Za-z_][A-Za-z0-9_.]*)\s+TO\s+([A-Za-z_][A-Za-z0-9_.]*)`)
	viewRE    = regexp.MustCompile(`(?i)^\s*CREATE\s+MATERIALIZED\s+VIEW\s+(?:IF\s+NOT\s+EXISTS\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s+TO\s+([A-Za-z_][A-Za-z0-9_.]*)`)
	readRE    = regexp.MustCompile(`(?i)\b(?:FROM|JOIN)\s+([A-Za-z_][A-Za-z0-9_.]*)`)
	joinGetRE = regexp.MustCompile(`(?i)\bjoinGet\(\s*'([A-Za-z0-9_.]+)'`)
	writeRE   = regexp.MustCompile(`(?i)^\s*(INSERT\s+INTO|CREATE\s+TABLE(?:\s+IF\s+NOT\s+EXISTS)?|DROP\s+TABLE(?:\s+IF\s+EXISTS)?|OPTIMIZE\s+TABLE|TRUNCATE\s+TABLE|ALTER\s+TABLE)\s+([A-Za-z_][A-Za-z0-9_.]*)(.*)`)
	spaceRE   = regexp.MustCompile(`\s+`)
	dropRE    = regexp.MustCompile(`(?i)^\s*DROP\s+PARTITION\b`)
	addRE     = regexp.MustCompile(`(?i)^\s*ADD\s+COLUMN\b`)
)

// AccessesOf lists the privileges q needs, read from its SQL as
// ClickHouse checks them: the tables it reads (FROM, JOIN, joinGet) and
// the one it inserts into, creates, drops, empties, merges or alters
// (ALTER … DROP PARTITION needs ALTER DELETE); a rename needs SELECT and
// DROP TABLE on its source and CREATE TABLE and INSERT on its target; a
// materialized view CREATE VIEW, and SELECT and INSERT on its target. Its
// external tables and the system database need none.
func AccessesOf(q Query) []Access {
	external := map[string]bool{}
	for _, x := range q.External {
		external[x.Name] = true
	}
	var out []Access
	add := func(table, privilege string) {
		if external[table] || strings.HasPrefix(table, "system.") {
			return
		}
		out = append(out, Access{Table: table, Privilege: privilege})
	}
	if m := renameRE.FindStringSubmatch(q.SQL); m != nil {
		add(m[1], "SELECT")
		add(m[1], "DROP TABLE")
		add(m[2], "CREATE TABLE")
		add(m[2], "INSERT")
	} else if m := viewRE.FindStringSubmatch(q.SQL); m != nil {
		add(m[1], "CREATE VIEW")
		add(m[2], "SELECT")
		add(m[2], "INSERT")
	} else if m := writeRE.FindStringSubmatch(q.SQL); m != nil {
		verb := strings.ToUpper(spaceRE.ReplaceAllString(m[1], " "))
		switch {
		case strings.HasPrefix(verb, "INSERT"):
			add(m[2], "INSERT")
		case strings.HasPrefix(verb, "CREATE"):
			add(m[2], "CREATE TABLE")
		case strings.HasPrefix(verb, "DROP"):
			add(m[2], "DROP TABLE")
		case strings.HasPrefix(verb, "OPTIMIZE"):
			add(m[2], "OPTIMIZE")
		case strings.HasPrefix(verb, "TRUNCATE"):
			add(m[2], "TRUNCATE")
		case dropRE.MatchString(m[3]):
			add(m[2], "ALTER DELETE")
		case addRE.MatchString(m[3]):
			add(m[2], "ALTER ADD COLUMN")
		default:
			add(m[2], "ALTER")
		}
	}
	for _, re := range []*regexp.Regexp{readRE, joinGetRE} {
		for _, m := range re.FindAllStringSubmatch(q.SQL, -1) {
			add(m[1], "SELECT")
		}
	}
	return out
}

// Allows says whether access holds a privilege on a table (a name ending
// in * is a prefix; "*" every table).
func Allows(access map[string][]string, a Access) bool {
	for table, privileges := range access {
		name, prefix := strings.CutSuffix(table, "*")
		if (table == a.Table || prefix && strings.HasPrefix(a.Table, name)) && slices.Contains(privileges, a.Privilege) {
			return true
		}
	}
	return false
}
