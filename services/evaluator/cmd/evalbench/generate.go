package main

import (
	"context"
	"fmt"
	"time"

	"github.com/assoliment/assoliment/services/platform/chconn"
)

// The data sets are generated inside ClickHouse with INSERT … SELECT …
// FROM numbers(), through the rollups' materialized views like any insert:
// every municipality registers 20 services in 10 areas (half concessions
// of 4 providers), 3 SLAs each, hourly measurements of every KPI (at half
// past each hour) and incidents opened and resolved every day. Older
// history adds one measurement per series and day, and incidents, before
// the windows.

const (
	servicesPer = 20
	kpisPer     = 3
	seriesPer   = servicesPer * kpisPer
	chunk       = 1000 // series per insert, to bound the server's memory
)

func exec(ctx context.Context, c *chconn.Conn, format string, args ...any) error {
	q := fmt.Sprintf(format, args...)
	if err := c.Exec(ctx, q); err != nil {
		return fmt.Errorf("%w\n%s", err, q)
	}
	return nil
}

// seriesColumns are the columns of a measurement of series number sr.
const seriesColumns = `concat('m-', toString(intDiv(sr, 60))), if(intDiv(sr, 3) %% 2 = 0, concat('provider-', toString(intDiv(sr, 3) %% 8)), 'council'),
	concat('s', toString(intDiv(sr, 3) %% 20)), concat('k', toString(sr %% 3))`

// generate fills a fresh database with n municipalities: the catalogue,
// hourly measurements over the days before at, and incidents.
func generate(ctx context.Context, c *chconn.Conn, at time.Time, n, days int) error {
	old := at.Add(-200 * 24 * time.Hour).Unix()
	muni := "concat('m-', toString(intDiv(number, %d)))"
	// services: number = m*20 + s
	if err := exec(ctx, c, `INSERT INTO %s (municipality, publisher, id, type, service, kpi, time, time_ms, name, area, delivery, provider,
		reporting_interval_seconds, open_data, unit, direction, target, objective, source, stream_seq, ingested_at, version)
		SELECT %s, 'council', concat('svc-', toString(number)), 'cat.smartcity.service.registered.v1',
			concat('s', toString(number %% 20)), '', toDateTime(%d), 0, concat('Service ', toString(number %% 20)),
			concat('area-', toString(number %% 10)), if(number %% 2 = 0, 'concession', 'own'),
			if(number %% 2 = 0, concat('provider-', toString(number %% 8)), 'council'), 3600, number %% 3 = 0, '', '', 0, 0,
			'urn:bench', number, now(), 0
		FROM numbers(%d)`, c.Table("catalog"), fmt.Sprintf(muni, servicesPer), old, n*servicesPer); err != nil {
		return err
	}
	// SLAs: number = (m*20 + s)*3 + k
	if err := exec(ctx, c, `INSERT INTO %s (municipality, publisher, id, type, service, kpi, time, time_ms, name, area, delivery, provider,
		reporting_interval_seconds, open_data, unit, direction, target, objective, source, stream_seq, ingested_at, version)
		SELECT %s, 'council', concat('sla-', toString(number)), 'cat.smartcity.sla.defined.v1',
			concat('s', toString(intDiv(number, 3) %% 20)), concat('k', toString(number %% 3)), toDateTime(%d), 0, 'KPI', '', '', '',
			0, 0, 'ratio', 'higher_is_better', 0.5, 0.9, 'urn:bench', number, now(), 0
		FROM numbers(%d)`, c.Table("catalog"), fmt.Sprintf(muni, seriesPer), old, n*seriesPer); err != nil {
		return err
	}
	// Measurements: number = series*hours + h.
	hours := days * 24
	from := at.Add(-time.Duration(hours) * time.Hour).Unix()
	for s0 := 0; s0 < n*seriesPer; s0 += chunk {
		cnt := min(chunk, n*seriesPer-s0)
		if err := exec(ctx, c, `INSERT INTO %s (municipality, publisher, service, kpi, id, value, time, time_ms, source, stream_seq, ingested_at, version)
			SELECT `+seriesColumns+`, concat('x-', toString(number)),
				(cityHash64(number) %% 1000) / 1000 + 0.1 * (sr %% 7 = 0), toDateTime(%d + h * 3600 + 1800), 0, 'urn:bench', number, now(), 0
			FROM (SELECT number, intDiv(number, %d) AS sr, number %% %d AS h FROM numbers(%d, %d))`,
			c.Table("measurements"), from, hours, hours, s0*hours, cnt*hours); err != nil {
			return err
		}
	}
	return incidents(ctx, c, at, n, 0, 50, "")
}

// incidents adds incidents to each municipality over the days
// [first, first+count) before at, four every five days, most resolved
// within their 4-hour target, one in ten late. They are inserted as the
// ingest stores them, oldest first and each opening in the same insert as
// its resolution (an hour or 5.5 h later), 30 days at a time.
func incidents(ctx context.Context, c *chconn.Conn, at time.Time, n, first, count int, prefix string) error {
	per := count * 4 / 5
	muni := fmt.Sprintf("concat('m-', toString(intDiv(number, %d)))", per)
	publisher := "if(intDiv(number, 2) % 2 = 0, concat('provider-', toString(intDiv(number, 2) % 8)), 'council')"
	service := "concat('s', toString(intDiv(number, 2) % 20))"
	opened := fmt.Sprintf("%d - (%d + number %% %d) * 86400", at.Unix(), first+1, count)
	for last := count; last > 0; last -= 30 { // days before first, oldest first
		if err := exec(ctx, c, `INSERT INTO %s (municipality, publisher, id, type, service, incident, priority, resolution_target_seconds, time, time_ms, source, stream_seq, ingested_at, version)
			SELECT %s, %s, concat('%si', if(resolution, 'r-', 'o-'), toString(number)),
				if(resolution, 'cat.smartcity.incident.resolved.v1', 'cat.smartcity.incident.opened.v1'), %s,
				concat('%sinc-', toString(number)), if(resolution, '', 'high'), if(resolution, 0, 14400),
				toDateTime(%s + if(resolution, if(number %% 10 = 0, 20000, 3600), 0)), 0, 'urn:bench', number, now(), 0
			FROM numbers(%d) ARRAY JOIN [0, 1] AS resolution
			WHERE number %% %d >= %d AND number %% %d < %d`, c.Table("incidents"), muni, publisher, prefix, service, prefix, opened,
			n*per, count, max(0, last-30), count, last); err != nil {
			return err
		}
	}
	return nil
}

// older adds one measurement per series and day over the days
// [first, first+count) before the windows' data, which starts days before
// at.
func older(ctx context.Context, c *chconn.Conn, at time.Time, n, days, first, count int) error {
	start := at.Add(-time.Duration(days) * 24 * time.Hour).Unix()
	for s0 := 0; s0 < n*seriesPer; s0 += chunk {
		cnt := min(chunk, n*seriesPer-s0)
		if err := exec(ctx, c, `INSERT INTO %s (municipality, publisher, service, kpi, id, value, time, time_ms, source, stream_seq, ingested_at, version)
			SELECT `+seriesColumns+`, concat('o%d-', toString(number)),
				(cityHash64(number) %% 1000) / 1000, toDateTime(%d - (%d + d) * 86400 + 43200), 0, 'urn:bench', number, now(), 0
			FROM (SELECT number, intDiv(number, %d) AS sr, number %% %d AS d FROM numbers(%d, %d))`,
			c.Table("measurements"), first, start, first+1, count, count, s0*count, cnt*count); err != nil {
			return err
		}
	}
	return nil
}
