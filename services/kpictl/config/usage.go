package config

const mainUsage = `kpictl — the Assoliment command-line tool for providers and operators.

Usage:
  kpictl validate FILE...             check event files against contract v1 (offline)
  kpictl publish FILE...              publish event files to NATS JetStream
  kpictl dlq list                     show dead letters
  kpictl dlq replay                   re-publish dead letters and remove them
  kpictl assessment MUNICIPALITY      show a municipality's maturity assessment

Run 'kpictl COMMAND --help' for the flags and examples of a command.

Environment:
  NATS_URL       NATS server (default nats://127.0.0.1:4222); --nats-url wins over it
  NATS_CREDS     NATS credentials file (optional); --nats-creds wins over it
  EVALUATOR_URL  evaluator API (default http://127.0.0.1:8080); --evaluator-url wins over it

Exit status: 0 success, 1 something was invalid or failed, 2 usage or I/O error.
`

const validateUsage = `Usage: kpictl validate [flags] FILE...

Checks every event in the files against contract v1, exactly as the platform
does (subject derived from each event's municipality, publisher and type),
without any server. A file is one JSON event, a JSON array of events, or JSON
Lines (one event per line). Each invalid event is printed as

  FILE:LINE: REASON: MESSAGE

where REASON is one of the contract's rejection reasons. Exit status 0 when
every event is valid, 1 when some are not, 2 on a usage or I/O error.

Flags:
  --subject SUBJECT     judge every event as if published on SUBJECT
                        (smartcity.<municipality>.<publisher>.<kind>)
  --now TIME            clock for the time rules, RFC 3339 (default: now)
  --max-lateness D      oldest accepted event time (default 400d)

Examples:
  kpictl validate events.jsonl
  kpictl validate today/*.json --now 2026-11-20T12:00:00Z
  kpictl validate readings.jsonl --subject smartcity.sabadell.fcc-medi-ambient.measurement
`

const publishUsage = `Usage: kpictl publish [flags] FILE...

Publishes the events in the files (JSON, JSON array or JSON Lines) to NATS
JetStream, each on the subject its envelope implies and with Nats-Msg-Id set
to its id, and waits for the broker's acks. Shows a progress bar on a
terminal, progress lines otherwise, and ends with the counts. Invalid events
are reported (FILE:LINE: REASON: MESSAGE) and skipped unless --allow-invalid
is given. Exit status 1 when any event failed or was skipped.

Flags:
  --nats-url URL        NATS server (env NATS_URL, default nats://127.0.0.1:4222)
  --nats-creds FILE     credentials file (env NATS_CREDS)
  --allow-invalid       publish invalid events too, to exercise dead letters
  --subject SUBJECT     publish every event on SUBJECT instead
  --max-in-flight N     messages awaiting an ack at most (default 256)
  --now TIME            clock for validation, RFC 3339 (default: now)
  --max-lateness D      oldest accepted event time (default 400d)

Examples:
  kpictl publish readings.jsonl
  NATS_URL=tls://nats.example.cat:4222 NATS_CREDS=fcc.creds kpictl publish day1.jsonl day2.jsonl
  kpictl publish broken.jsonl --allow-invalid
`

const dlqUsage = `Usage: kpictl dlq list|replay [flags]

Dead letters are messages the platform rejected, stored whole with their
original subject and rejection reason in the dead-letter stream.

Run 'kpictl dlq list --help' or 'kpictl dlq replay --help' for details.
`

const dlqListUsage = `Usage: kpictl dlq list [flags]

Shows dead letters without consuming them: stream sequence, original
subject, reason, time received and the first 60 bytes of the message.

Flags:
  --reason R            only this rejection reason
  --limit N             at most N dead letters (default 100, 0 for all)
  --json                one JSON object per dead letter, with the whole message
  --stream NAME         dead-letter stream (default SMARTCITY_DLQ)
  --nats-url URL        NATS server (env NATS_URL, default nats://127.0.0.1:4222)
  --nats-creds FILE     credentials file (env NATS_CREDS)

Examples:
  kpictl dlq list
  kpictl dlq list --reason future_time --limit 20
  kpictl dlq list --json | jq -r .data
`

const dlqReplayUsage = `Usage: kpictl dlq replay [flags]

Re-publishes the chosen dead letters' original bytes on their original
subject (with a fresh Nats-Msg-Id, so the broker does not drop them as
copies) and waits for the ack; the dead letters stay in their stream.
Replay after fixing the cause (for example a missing catalogue entry or a
platform setting): a message that is still invalid is dead-lettered again.

Flags:
  --reason R            only this rejection reason
  --seq N               only this DLQ sequence (repeatable, or 3,5,8)
  --limit N             at most N dead letters (default: all chosen)
  --dry-run             show what would be replayed; change nothing
  --stream NAME         dead-letter stream (default SMARTCITY_DLQ)
  --nats-url URL        NATS server (env NATS_URL, default nats://127.0.0.1:4222)
  --nats-creds FILE     credentials file (env NATS_CREDS)

Examples:
  kpictl dlq replay --reason too_late --dry-run
  kpictl dlq replay --seq 42
  kpictl dlq replay --reason subject_mismatch --limit 100
`

const assessmentUsage = `Usage: kpictl assessment [flags] MUNICIPALITY

Fetches a municipality's maturity assessment from the evaluator and prints
every criterion (level, pass or fail, value, threshold, explanation) and
what is missing for the next level.

Flags:
  --at TIME             evaluate at this instant (RFC 3339) instead of the latest evaluation
  --json                print the evaluator's JSON
  --evaluator-url URL   evaluator API (env EVALUATOR_URL, default http://127.0.0.1:8080)

Examples:
  kpictl assessment sabadell
  kpictl assessment granollers --at 2026-10-01T00:00:00Z
  EVALUATOR_URL=http://evaluator:8080 kpictl assessment vic --json
`
