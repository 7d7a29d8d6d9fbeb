package reader

import (
	"time"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/evaluator/internal/maturity"
	"github.com/assoliment/assoliment/services/storage"
)

// countedSeries lists, for the hash look-up, the series that can count:
// every SLA's KPI series and every service's series, each for the
// service's provider and for the council.
func countedSeries(cat *Catalogue) (slas, services []storage.Series) {
	nServices, nSLAs := cat.size()
	slas, services = make([]storage.Series, 0, 2*nSLAs), make([]storage.Series, 0, 2*nServices)
	for m, ss := range cat.Services {
		for id, s := range ss {
			for _, p := range publishers(s.Provider) {
				services = append(services, storage.Series{Municipality: m, Service: id, Publisher: p})
			}
		}
	}
	for m, ks := range cat.SLAs {
		for k := range ks {
			provider, _ := cat.Provider(m, k.Service)
			for _, p := range publishers(provider) {
				slas = append(slas, storage.Series{Municipality: m, Service: k.Service, KPI: k.KPI, Publisher: p})
			}
		}
	}
	return slas, services
}

// publishers are who count for a service of provider p.
func publishers(p string) []string {
	if p == contract.Council {
		return []string{p}
	}
	return []string{p, contract.Council}
}

// targets are the SLA targets of every counted SLA series.
func targets(cat *Catalogue) []storage.Target {
	_, nSLAs := cat.size()
	out := make([]storage.Target, 0, 2*nSLAs)
	for m, ks := range cat.SLAs {
		for k, s := range ks {
			provider, _ := cat.Provider(m, k.Service)
			for _, p := range publishers(provider) {
				out = append(out, storage.Target{Series: storage.Series{Municipality: m, Service: k.Service, KPI: k.KPI, Publisher: p},
					LowerIsBetter: s.Direction == contract.LowerIsBetter, Target: s.Target})
			}
		}
	}
	return out
}

// Hashes names the hashes of the counted series (the hash columns of
// measurements), computed in Go from the catalogue.
type Hashes struct {
	Series       map[uint64]storage.Series // SLA series: municipality, service, kpi, publisher
	Service      map[uint64]storage.Series // service series: municipality, service, publisher
	Municipality map[uint64]string         // known municipalities

	// Where each counted series adds in a Tally, by index, so that adding
	// a series' counts costs one look-up by number, not one by names per
	// total: the services (municipality, service) and SLAs (municipality,
	// service, kpi) in index order, and the indexes of each series.
	services    []storage.Series
	slas        []storage.Series
	seriesSlot  map[uint64]slot // by SLA series hash
	serviceSlot map[uint64]slot // by service series hash (sla -1)
}

// counts reports whether the series of g counts at T: an SLA series, or
// a series of a counted publisher of a catalogued service.
func (h *Hashes) counts(g *storage.SeriesCounts) bool {
	if _, ok := h.seriesSlot[g.Series]; ok {
		return true
	}
	_, ok := h.serviceSlot[g.ServiceHash]
	return ok
}

// slot is where a series adds: its service, and its SLA (-1: none).
type slot struct{ service, sla int32 }

// NewHashes hashes every series that can count at T and every known
// municipality.
func NewHashes(cat *Catalogue) *Hashes {
	slas, services := countedSeries(cat)
	h := &Hashes{Series: make(map[uint64]storage.Series, len(slas)), Service: make(map[uint64]storage.Series, len(services)),
		Municipality: make(map[uint64]string, len(cat.Known))}
	h.seriesSlot, h.serviceSlot = make(map[uint64]slot, len(slas)), make(map[uint64]slot, len(services))
	serviceIndex := make(map[storage.Series]int32, len(services))
	serviceOf := func(s storage.Series) int32 {
		key := storage.Series{Municipality: s.Municipality, Service: s.Service}
		i, ok := serviceIndex[key]
		if !ok {
			i = int32(len(h.services))
			serviceIndex[key] = i
			h.services = append(h.services, key)
		}
		return i
	}
	slaIndex := make(map[storage.Series]int32, len(slas))
	for _, s := range slas {
		hash := storage.SeriesHash(s)
		h.Series[hash] = s
		key := storage.Series{Municipality: s.Municipality, Service: s.Service, KPI: s.KPI}
		i, ok := slaIndex[key]
		if !ok {
			i = int32(len(h.slas))
			slaIndex[key] = i
			h.slas = append(h.slas, key)
		}
		h.seriesSlot[hash] = slot{service: serviceOf(s), sla: i}
	}
	for _, s := range services {
		hash := storage.ServiceHash(s)
		h.Service[hash] = s
		h.serviceSlot[hash] = slot{service: serviceOf(s), sla: -1}
	}
	for m := range cat.Known {
		h.Municipality[storage.MunicipalityHash(m)] = m
	}
	return h
}

// Tally is what the measurements say at T, in the terms of the rules.
type Tally struct {
	CountC       map[string]map[string]int       // municipality -> service -> counted measurements in C
	Last         map[string]map[string]time.Time // municipality -> service -> latest counted measurement
	SLAs         map[string]map[maturity.SLAKey]*SLAStats
	Unattributed map[string]int // known municipality -> measurements in C not counted
	Unknown      int            // measurements in C of municipalities not known

	// What AddSeries adds, by the indexes of Hashes, until fold moves
	// the services' totals into CountC and Last.
	h        *Hashes
	services []serviceCell
	slas     []*SLAStats
}

// serviceCell is a service's totals not folded yet.
type serviceCell struct {
	countC int
	last   int64
	seen   bool
}

// SLAStats are the counted samples of one SLA.
type SLAStats struct {
	C, P  maturity.WindowStats
	Short map[string]maturity.WindowStats // by short-window label; absent when no samples
}

// NewTally prepares the stats of every SLA in force.
func NewTally(cat *Catalogue) *Tally {
	t := &Tally{CountC: map[string]map[string]int{}, Last: map[string]map[string]time.Time{},
		SLAs: map[string]map[maturity.SLAKey]*SLAStats{}, Unattributed: map[string]int{}}
	for m, ks := range cat.SLAs {
		t.SLAs[m] = map[maturity.SLAKey]*SLAStats{}
		for k := range ks {
			t.SLAs[m][k] = &SLAStats{} // Short made when a short window has samples
		}
	}
	return t
}

func (t *Tally) service(m string) {
	if t.CountC[m] == nil {
		t.CountC[m], t.Last[m] = map[string]int{}, map[string]time.Time{}
	}
}

// AddSeries applies the publisher rule to the per-series counts of a
// part of the windows (parts add up): a series counts when the hashes name
// it as a counted SLA series or service series; it then adds to its
// service's count in C and latest measurement and, for an SLA series, to
// the SLA's samples in C, P and the short windows (labels name them in the
// order of the counts). Series that do not count add their count in C to
// their municipality's unattributed measurements, or, for a municipality
// that is not known, to Unknown. The services' counts and latest
// measurements reach CountC and Last with fold.
func (t *Tally) AddSeries(groups []storage.SeriesCounts, labels []string, h *Hashes) {
	for i := range groups {
		t.add(&groups[i], labels, h)
	}
}

func (t *Tally) add(g *storage.SeriesCounts, labels []string, h *Hashes) {
	if t.h != h {
		t.bind(h)
	}
	at, isSLA := h.seriesSlot[g.Series]
	if !isSLA {
		var counted bool
		if at, counted = h.serviceSlot[g.ServiceHash]; !counted {
			if m, known := h.Municipality[g.MunicipalityHash]; known {
				t.Unattributed[m] += int(g.SamplesC)
			} else {
				t.Unknown += int(g.SamplesC)
			}
			return
		}
	}
	cell := &t.services[at.service]
	if !cell.seen {
		cell.seen, cell.last = true, g.Last
	}
	cell.countC += int(g.SamplesC)
	cell.last = max(cell.last, g.Last)
	if !isSLA {
		return
	}
	sla := t.slas[at.sla]
	if sla == nil {
		return
	}
	sla.C.Samples += int(g.SamplesC)
	sla.C.Meeting += int(g.MeetingC)
	sla.P.Samples += int(g.SamplesP)
	sla.P.Meeting += int(g.MeetingP)
	for i, label := range labels {
		samples, meeting := g.Short(i)
		if samples == 0 {
			continue
		}
		if sla.Short == nil {
			sla.Short = make(map[string]maturity.WindowStats, len(labels))
		}
		cur := sla.Short[label]
		cur.Samples += int(samples)
		cur.Meeting += int(meeting)
		sla.Short[label] = cur
	}
}

// bind makes the cells of h's indexes, folding what was added by others.
func (t *Tally) bind(h *Hashes) {
	t.fold()
	t.h = h
	t.services = make([]serviceCell, len(h.services))
	t.slas = make([]*SLAStats, len(h.slas))
	for i, s := range h.slas {
		t.slas[i] = t.SLAs[s.Municipality][maturity.SLAKey{Service: s.Service, KPI: s.KPI}]
	}
}

// fold adds the services' totals added so far to CountC and Last.
func (t *Tally) fold() {
	if t.h == nil {
		return
	}
	for i := range t.services {
		cell := &t.services[i]
		if !cell.seen {
			continue
		}
		s := t.h.services[i]
		t.service(s.Municipality)
		t.CountC[s.Municipality][s.Service] += cell.countC
		if last := nanos(cell.last); last.After(t.Last[s.Municipality][s.Service]) {
			t.Last[s.Municipality][s.Service] = last
		}
		*cell = serviceCell{}
	}
}

// silent lists the series of catalogued services with no counted
// measurement in the last 2W, whose latest measurement is looked up
// further back.
func (t *Tally) silent(cat *Catalogue) []storage.Series {
	var out []storage.Series
	for m, ss := range cat.Services {
		for id, s := range ss {
			if _, ok := t.Last[m][id]; ok {
				continue
			}
			for _, p := range publishers(s.Provider) {
				out = append(out, storage.Series{Municipality: m, Service: id, Publisher: p})
			}
		}
	}
	return out
}

// AddOlder records the latest measurements found before 2W ago.
func (t *Tally) AddOlder(rows []storage.LastMeasurement) {
	for _, r := range rows {
		t.service(r.Municipality)
		if last := nanos(r.Last); last.After(t.Last[r.Municipality][r.Service]) {
			t.Last[r.Municipality][r.Service] = last
		}
	}
}
