package maturity

import "time"

// SampleInput returns a small municipality that DefaultConfig places exactly
// at level (clamped to 0…MaxLevel) when evaluated at at: six services in six
// areas, four of them concessions of four providers, one SLA each. It is
// meant for tests and demos.
func SampleInput(municipality string, level int, at time.Time) Input {
	level = max(0, min(MaxLevel, level))
	old := at.Add(-400 * Day)
	type row struct {
		id, name, area, delivery, provider string
		interval                           time.Duration
		openData                           bool
		kpi, unit, direction               string
		target                             float64
	}
	rows := []row{
		{"recollida-residus", "Recollida de residus", "environment", DeliveryConcession, "fcc-medi-ambient", 15 * time.Minute, true, "containers-emptied-on-time", "ratio", HigherIsBetter, 0.98},
		{"enllumenat-public", "Enllumenat públic", "lighting", DeliveryConcession, "citelum", time.Hour, true, "lights-working", "ratio", HigherIsBetter, 0.99},
		{"subministrament-aigua", "Subministrament d'aigua", "water", DeliveryConcession, "aigues-sabadell", time.Hour, false, "network-pressure-bar", "bar", HigherIsBetter, 2.5},
		{"bus-urba", "Autobús urbà", "mobility", DeliveryConcession, "moventis", 15 * time.Minute, true, "headway-minutes", "min", LowerIsBetter, 12},
		{"parcs-jardins", "Parcs i jardins", "parks", DeliveryOwn, Council, 24 * time.Hour, false, "irrigation-faults", "count", LowerIsBetter, 2},
		{"atencio-ciutadana", "Oficina d'atenció ciutadana", "citizen-services", DeliveryOwn, Council, time.Hour, false, "waiting-minutes", "min", LowerIsBetter, 15},
	}
	in := Input{Municipality: municipality, At: at}
	for _, r := range rows {
		in.Services = append(in.Services, Service{
			ID: r.id, Name: r.name, Area: r.area, Delivery: r.delivery, Provider: r.provider,
			ReportingInterval: r.interval, OpenData: r.openData, FirstRegistered: old,
			MeasurementsC: 500, LastMeasurement: at.Add(-time.Minute),
		})
		in.SLAs = append(in.SLAs, SLA{
			Service: r.id, KPI: r.kpi, Name: r.kpi, Unit: r.unit, Direction: r.direction,
			Target: r.target, Objective: 0.95, FirstDefined: old,
			C: WindowStats{Samples: 100, Meeting: 99}, P: WindowStats{Samples: 100, Meeting: 97},
		})
	}
	opened := at.Add(-10 * Day)
	in.Incidents = []Incident{{
		Service: "enllumenat-public", ID: "inc-0001", Priority: "high",
		OpenedAt: opened, Deadline: opened.Add(4 * time.Hour), ResolvedAt: opened.Add(2 * time.Hour),
	}}
	if level == MaxLevel {
		in.Services[5].FirstRegistered = at.Add(-30 * Day) // adaptive
	}
	if level <= 3 { // incident_response and sla_coverage_own fail
		in.Incidents = nil
		in.SLAs = in.SLAs[:4]
	}
	silence := func(ids ...string) {
		for _, id := range ids {
			for i := range in.Services {
				if s := &in.Services[i]; s.ID == id {
					s.MeasurementsC, s.LastMeasurement = 0, at.Add(-45*Day)
				}
			}
			for i := range in.SLAs {
				if in.SLAs[i].Service == id {
					in.SLAs[i].C = WindowStats{}
				}
			}
		}
	}
	if level <= 2 { // no external provider reporting
		silence("recollida-residus", "enllumenat-public", "subministrament-aigua", "bus-urba")
	}
	if level <= 1 { // one area reporting
		silence("atencio-ciutadana")
	}
	if level == 0 { // nothing reporting
		silence("parcs-jardins")
	}
	return in
}
