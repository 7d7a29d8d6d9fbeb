package sim

import (
	"time"

	"github.com/assoliment/assoliment/services/contract"
)

// KPI templates. Each returns a fresh value that the table below adjusts.

func containersEmptied(fail float64) KPI {
	return KPI{ID: "containers-emptied-on-time", Name: "Contenidors buidats dins l'horari", Unit: "ratio",
		Direction: contract.HigherIsBetter, Target: 0.98, Objective: 0.95,
		Base: 0.992, Noise: 0.006, Min: 0, Max: 1, Decimals: 3, FailShare: fail}
}

func streetsCleaned(objective, base, fail float64) KPI {
	return KPI{ID: "streets-cleaned-on-schedule", Name: "Carrers netejats segons el calendari", Unit: "ratio",
		Direction: contract.HigherIsBetter, Target: 0.9, Objective: objective,
		Base: base, Spread: 0.01, Noise: 0.02, Min: 0, Max: 1, Decimals: 3, Shape: Daytime, FailShare: fail}
}

func lampsOperational(fail float64) KPI {
	return KPI{ID: "lamps-operational", Name: "Punts de llum en servei", Unit: "ratio",
		Direction: contract.HigherIsBetter, Target: 0.97, Objective: 0.95,
		Base: 0.986, Noise: 0.005, Min: 0, Max: 1, Decimals: 3, FailShare: fail}
}

func lightingEnergy() KPI {
	return KPI{ID: "lighting-energy-kwh", Name: "Consum de l'enllumenat", Unit: "kWh",
		Direction: contract.LowerIsBetter, Target: 900, Objective: 0.9, NoSLA: true,
		Base: 520, Spread: -380, Noise: 25, Min: 0, Max: 5000, Decimals: 1, Shape: Daytime}
}

func networkPressure(fail float64) KPI {
	return KPI{ID: "network-pressure", Name: "Pressió mínima a la xarxa", Unit: "bar",
		Direction: contract.HigherIsBetter, Target: 2.5, Objective: 0.98,
		Base: 3.4, Spread: -0.3, Noise: 0.12, Min: 0, Max: 8, Decimals: 2, Shape: Demand, FailShare: fail}
}

func residualChlorine(fail float64) KPI {
	return KPI{ID: "residual-chlorine", Name: "Clor lliure residual", Unit: "mg/L",
		Direction: contract.HigherIsBetter, Target: 0.2, Objective: 0.99,
		Base: 0.55, Noise: 0.08, Min: 0, Max: 2, Decimals: 2, FailShare: fail}
}

func busPunctuality(objective, base, fail float64) KPI {
	return KPI{ID: "bus-punctuality", Name: "Busos puntuals (retard < 3 min)", Unit: "ratio",
		Direction: contract.HigherIsBetter, Target: 0.85, Objective: objective,
		Base: base, Spread: -0.03, Noise: 0.02, Min: 0, Max: 1, Decimals: 3, Shape: Rush, FailShare: fail}
}

func fleetAvailability(fail float64) KPI {
	return KPI{ID: "fleet-availability", Name: "Flota disponible", Unit: "ratio",
		Direction: contract.HigherIsBetter, Target: 0.95, Objective: 0.95,
		Base: 0.975, Noise: 0.01, Min: 0, Max: 1, Decimals: 3, FailShare: fail}
}

func greenAreasIrrigated(fail float64) KPI {
	return KPI{ID: "green-areas-irrigated", Name: "Zones verdes regades segons el pla", Unit: "ratio",
		Direction: contract.HigherIsBetter, Target: 0.9, Objective: 0.9,
		Base: 0.955, Noise: 0.02, Min: 0, Max: 1, Decimals: 3, FailShare: fail}
}

func oacWait(fail float64) KPI {
	return KPI{ID: "oac-wait-minutes", Name: "Temps d'espera a l'OAC", Unit: "min",
		Direction: contract.LowerIsBetter, Target: 15, Objective: 0.9,
		Base: 8, Spread: 3, Noise: 1.5, Min: 0, Max: 240, Decimals: 1, Shape: Daytime, FailShare: fail}
}

func ratioKPI(id, name string, target, objective, base float64) KPI {
	return KPI{ID: id, Name: name, Unit: "ratio", Direction: contract.HigherIsBetter,
		Target: target, Objective: objective, Base: base, Noise: 0.01, Min: 0, Max: 1, Decimals: 3}
}

func energyVsBaseline(fail float64) KPI {
	return KPI{ID: "energy-vs-baseline", Name: "Consum d'edificis municipals respecte a la línia base", Unit: "ratio",
		Direction: contract.LowerIsBetter, Target: 1.0, Objective: 0.9,
		Base: 0.9, Spread: 0.04, Noise: 0.025, Min: 0, Max: 3, Decimals: 3, Shape: Daytime, FailShare: fail}
}

func noSLA(k KPI) KPI { k.NoSLA = true; return k }

func slaAdded(days int, k KPI) KPI { k.SLAAddedDaysAgo = days; return k }

const (
	quarterHour = 15 * time.Minute
	hourly      = time.Hour
	daily       = 24 * time.Hour
)

func concession(id, name, area, provider string, every time.Duration, open bool, kpis ...KPI) Service {
	return Service{ID: id, Name: name, Area: area, Delivery: contract.DeliveryConcession,
		Provider: provider, Interval: every, OpenData: open, KPIs: kpis}
}

func own(id, name, area string, every time.Duration, open bool, kpis ...KPI) Service {
	return Service{ID: id, Name: name, Area: area, Delivery: contract.DeliveryOwn,
		Interval: every, OpenData: open, KPIs: kpis}
}

func silent(s Service) Service { s.Silent = true; return s }

func added(days int, s Service) Service { s.AddedDaysAgo = days; return s }

func withGaps(share float64, s Service) Service { s.GapShare = share; return s }

func withIncidents(everyHours, lateEvery int, s Service) Service {
	s.Incidents = &Incidents{EveryHours: everyHours, Presence: 0.85, LateEvery: lateEvery}
	return s
}

// Incidents that respond well: at most one late incident per service in any
// 60 days, so the on-time share stays well above 0.9.
func goodWaste(s Service) Service    { return withIncidents(36, 40, s) }
func goodLighting(s Service) Service { return withIncidents(48, 30, s) }
func goodWater(s Service) Service    { return withIncidents(72, 20, s) }

// RoadworksDip is Granollers' recurring episode: four days every eight weeks
// (works on the ring road) in which 90% of bus measurements miss the target.
var RoadworksDip = &Dip{Every: 56 * Day, Length: 4 * Day, FailShare: 0.9}

// Designed returns the simulated municipalities, each designed to land on a
// maturity level with the default thresholds of maturity.md (30-day window,
// 10 samples, shares 0.5/0.9/0.95/1.0, 90-day adaptation window). The
// comments and Why say which criteria decide each level; the evaluator's
// tests store the generated events and check every claim with the real
// reader and rules.
func Designed() []Municipality {
	return []Municipality{
		{
			ID: "berga", Name: "Berga", Level: 0,
			Fails: []string{"pilot"},
			Why: "Catalogue registered, but no service reports yet: pilot fails, " +
				"so Berga shows as sense dades.",
			Services: []Service{
				silent(concession("waste-collection", "Recollida de residus", AreaEnvironment, "bergueda-residus", hourly, false, containersEmptied(0))),
				silent(own("street-lighting", "Enllumenat públic", AreaLighting, hourly, false, lampsOperational(0))),
			},
		},
		{
			ID: "tremp", Name: "Tremp", Level: 1,
			Fails: []string{"areas_collaborating"},
			Why: "A street-lighting pilot reports hourly; the waste and water services are catalogued " +
				"but silent, so only one area reports in C (areas_collaborating needs 2).",
			Services: []Service{
				own("street-lighting", "Enllumenat públic", AreaLighting, hourly, false, lampsOperational(0.01), lightingEnergy()),
				silent(concession("waste-collection", "Recollida de residus", AreaEnvironment, "pallars-gestio-ambiental", hourly, false, containersEmptied(0))),
				silent(own("water-supply", "Abastament d'aigua", AreaWater, hourly, false, networkPressure(0))),
			},
		},
		{
			ID: "olot", Name: "Olot", Level: 2,
			Fails: []string{"areas_integrated", "external_partner"},
			Why: "Lighting and water (both run by the council) report, so two areas collaborate; " +
				"the concession waste service is silent, so there is no external partner and only two areas.",
			Services: []Service{
				own("street-lighting", "Enllumenat públic", AreaLighting, hourly, false, lampsOperational(0.01), lightingEnergy()),
				own("water-supply", "Abastament d'aigua", AreaWater, hourly, true, networkPressure(0.005)),
				silent(concession("waste-collection", "Recollida de residus", AreaEnvironment, "garrotxa-residus", hourly, false, containersEmptied(0))),
				silent(own("citizen-services", "Oficina d'Atenció Ciutadana", AreaCitizenServices, hourly, false, oacWait(0))),
			},
		},
		{
			ID: "vic", Name: "Vic", Level: 3,
			Fails: []string{"sla_coverage_own", "sla_measured", "realtime", "incident_response", "cross_cutting"},
			Why: "Three areas and two concession providers report, and 4 of 6 services do, so Estratègia holds; " +
				"own services have no SLA, the bus and parks services are silent (realtime 0.67, SLAs measured 0.67), " +
				"half the incidents are late and only three areas report.",
			Services: []Service{
				withIncidents(36, 2, concession("waste-collection", "Recollida de residus", AreaEnvironment, "osona-serveis-ambientals", hourly, false, containersEmptied(0.02))),
				withGaps(0.03, concession("street-cleaning", "Neteja viària", AreaEnvironment, "neteges-de-la-plana", hourly, false, streetsCleaned(0.9, 0.92, 0.12))),
				own("street-lighting", "Enllumenat públic", AreaLighting, hourly, true, noSLA(lampsOperational(0.02)), lightingEnergy()),
				own("water-supply", "Abastament d'aigua", AreaWater, hourly, false, noSLA(networkPressure(0.01))),
				silent(concession("public-transport", "Bus urbà", AreaMobility, "autocars-de-la-plana", quarterHour, false, busPunctuality(0.9, 0.9, 0))),
				silent(own("parks-maintenance", "Manteniment de parcs", AreaParks, daily, false, noSLA(greenAreasIrrigated(0)))),
			},
		},
		{
			ID: "sabadell", Name: "Sabadell", Level: 4,
			Fails: []string{"service_quality", "open_data", "adaptive"},
			Why: "Eight services in seven areas, every one with SLAs, measured, live and with incidents answered on time: Gestionat. " +
				"Street cleaning (80% vs 90%) and bus punctuality (75% vs 90%) miss their objectives (7 of 9 SLAs met), " +
				"only 2 of 8 services publish open data and nothing was added in the last 90 days.",
			Services: []Service{
				goodWaste(concession("waste-collection", "Recollida de residus", AreaEnvironment, "fcc-medi-ambient", quarterHour, true, containersEmptied(0.01))),
				concession("street-cleaning", "Neteja viària", AreaEnvironment, "vallesana-de-neteja", hourly, false, streetsCleaned(0.9, 0.93, 0.2)),
				goodLighting(concession("street-lighting", "Enllumenat públic", AreaLighting, "llumens-serveis-urbans", hourly, true, lampsOperational(0.01))),
				goodWater(concession("water-supply", "Abastament d'aigua", AreaWater, "aigues-del-ripoll", quarterHour, false, networkPressure(0.004))),
				concession("public-transport", "Bus urbà", AreaMobility, "bus-vallesa", quarterHour, false, busPunctuality(0.9, 0.88, 0.25), fleetAvailability(0.01)),
				own("parks-maintenance", "Manteniment de parcs", AreaParks, daily, false, greenAreasIrrigated(0)),
				own("citizen-services", "Oficina d'Atenció Ciutadana", AreaCitizenServices, hourly, false, oacWait(0.03)),
				own("building-energy", "Energia als edificis municipals", AreaEnergy, hourly, false, energyVsBaseline(0.03)),
			},
		},
		{
			ID: "reus", Name: "Reus", Level: 4,
			Fails: []string{"open_data", "external_collaboration", "adaptive"},
			Why: "Six services in six areas, all with SLAs that are met, live, incidents on time: Gestionat. " +
				"The bus company is municipal, so only two external providers report (needs 3), " +
				"open data is 2 of 6 and the catalogue has not changed in 90 days.",
			Services: []Service{
				goodWaste(concession("waste-collection", "Recollida de residus", AreaEnvironment, "baix-camp-residus", quarterHour, true, containersEmptied(0.01))),
				goodWater(concession("water-supply", "Abastament d'aigua", AreaWater, "aigues-del-baix-camp", quarterHour, false, networkPressure(0.004), residualChlorine(0.002))),
				goodLighting(own("street-lighting", "Enllumenat públic", AreaLighting, hourly, false, lampsOperational(0.01))),
				own("public-transport", "Bus urbà", AreaMobility, quarterHour, true, busPunctuality(0.9, 0.93, 0.03)),
				own("citizen-services", "Oficina d'Atenció Ciutadana", AreaCitizenServices, hourly, false, oacWait(0.02)),
				own("parks-maintenance", "Manteniment de parcs", AreaParks, daily, false, greenAreasIrrigated(0)),
			},
		},
		{
			ID: "granollers", Name: "Granollers", Level: 5, Flaps: true,
			DipFails: []string{"service_quality", "continuous_improvement"},
			Why: "Optimitzat while no roadworks episode is in the window: every SLA met in full, 7 areas, 4 providers, " +
				"7 of 8 services open, a service (70 days) and an SLA (20 days) added recently. " +
				"Every eight weeks four days of roadworks make 90% of bus measurements late: from then until the " +
				"episode leaves the 30-day window, bus punctuality misses its objective and compliance falls, so it drops to Gestionat.",
			Services: []Service{
				goodWaste(concession("waste-collection", "Recollida de residus", AreaEnvironment, "valles-oriental-residus", quarterHour, true, containersEmptied(0))),
				concession("street-cleaning", "Neteja viària", AreaEnvironment, "netejes-del-congost", hourly, true, streetsCleaned(0.9, 0.95, 0)),
				goodWater(concession("water-supply", "Abastament d'aigua", AreaWater, "aigues-del-congost", quarterHour, true, networkPressure(0))),
				concession("public-transport", "Bus urbà", AreaMobility, "bus-valles-oriental", quarterHour, true, func() KPI {
					k := busPunctuality(0.95, 0.93, 0)
					k.Dip = RoadworksDip
					return k
				}()),
				goodLighting(own("street-lighting", "Enllumenat públic", AreaLighting, hourly, true, lampsOperational(0))),
				own("citizen-services", "Oficina d'Atenció Ciutadana", AreaCitizenServices, hourly, false, oacWait(0),
					slaAdded(20, ratioKPI("online-requests-answered-48h", "Tràmits en línia resolts en 48 h", 0.9, 0.9, 0.95))),
				added(70, own("ev-charging", "Recàrrega de vehicles elèctrics", AreaEnergy, hourly, true,
					ratioKPI("chargers-available", "Punts de recàrrega disponibles", 0.95, 0.95, 0.985))),
				own("parks-maintenance", "Manteniment de parcs", AreaParks, daily, true, greenAreasIrrigated(0)),
			},
		},
		{
			ID: "sant-cugat-del-valles", Name: "Sant Cugat del Vallès", Level: 5,
			Why: "Nine services in seven areas, five providers, every SLA met in full in both windows, " +
				"7 of 9 services open, and smart parking added 35 days ago: every criterion passes.",
			Services: []Service{
				goodWaste(concession("waste-collection", "Recollida de residus", AreaEnvironment, "valles-net-serveis", quarterHour, true, containersEmptied(0))),
				concession("street-cleaning", "Neteja viària", AreaEnvironment, "netejes-de-collserola", hourly, true, streetsCleaned(0.9, 0.95, 0)),
				goodWater(concession("water-supply", "Abastament d'aigua", AreaWater, "aigues-de-collserola", quarterHour, true, networkPressure(0))),
				concession("public-transport", "Bus urbà", AreaMobility, "sant-cugat-bus", quarterHour, true, busPunctuality(0.95, 0.95, 0)),
				goodLighting(own("street-lighting", "Enllumenat públic", AreaLighting, hourly, true, lampsOperational(0))),
				own("citizen-services", "Oficina d'Atenció Ciutadana", AreaCitizenServices, hourly, false, oacWait(0)),
				own("building-energy", "Energia als edificis municipals", AreaEnergy, hourly, true, energyVsBaseline(0)),
				own("parks-maintenance", "Manteniment de parcs", AreaParks, daily, false, greenAreasIrrigated(0)),
				added(35, concession("smart-parking", "Aparcament intel·ligent", AreaMobility, "aparcaments-intelligents-valles", quarterHour, true,
					ratioKPI("parking-sensors-online", "Sensors d'aparcament en línia", 0.97, 0.95, 0.99))),
			},
		},
		{
			ID: "girona", Name: "Girona", Level: 5,
			Why: "Seven services in seven areas, four providers (lighting is a concession here), every SLA met in full, " +
				"6 of 7 services open, and an appointments SLA first defined 25 days ago: every criterion passes.",
			Services: []Service{
				goodWaste(concession("waste-collection", "Recollida de residus", AreaEnvironment, "girones-residus", quarterHour, true, containersEmptied(0))),
				goodWater(concession("water-supply", "Abastament d'aigua", AreaWater, "aigues-del-ter", quarterHour, true, networkPressure(0), residualChlorine(0))),
				concession("public-transport", "Bus urbà", AreaMobility, "bus-girona-urba", quarterHour, true, busPunctuality(0.95, 0.95, 0)),
				goodLighting(concession("street-lighting", "Enllumenat públic", AreaLighting, "enllumenat-gironi", hourly, true, lampsOperational(0))),
				own("citizen-services", "Oficina d'Atenció Ciutadana", AreaCitizenServices, hourly, true, oacWait(0),
					slaAdded(25, ratioKPI("appointments-within-3-days", "Cites ateses en 3 dies", 0.9, 0.9, 0.95))),
				own("building-energy", "Energia als edificis municipals", AreaEnergy, hourly, false, energyVsBaseline(0)),
				own("parks-maintenance", "Manteniment de parcs", AreaParks, daily, true, greenAreasIrrigated(0)),
			},
		},
	}
}

// LevelNames are the label values of maturity.md, by level.
var LevelNames = []string{"sense_dades", "puntual", "collaboracio", "estrategia", "gestionat", "optimitzat"}
