package maturity

import (
	"errors"
	"fmt"
	"time"
)

// Day is 24 hours, the unit of the windows.
const Day = 24 * time.Hour

// Config holds every window and threshold of maturity.md. Counts are
// "at least" thresholds and shares are compared with >=. A field such as
// SLAMeasuredMinShare is the key criteria.sla_measured.min_share of the
// criteria file; Window, Adaptation, MinSamples and LiveIntervals are the
// top-level keys window, adaptation_window, min_samples and live_intervals.
type Config struct {
	Window        time.Duration // W: length of C = [T-W, T) and P = [T-2W, T-W)
	Adaptation    time.Duration // length of A = [T-Adaptation, T)
	MinSamples    int           // samples an SLA needs in a window to be measured
	LiveIntervals int           // live: last measurement >= T - LiveIntervals * reporting interval

	PilotMinServices                  int
	AreasCollaboratingMinAreas        int
	AreasIntegratedMinAreas           int
	ExternalPartnerMinProviders       int
	ServicesIntegratedMinShare        float64
	SLACoverageConcessionMinServices  int
	SLACoverageConcessionMinShare     float64
	SLACoverageOwnMinServices         int
	SLACoverageOwnMinShare            float64
	SLAMeasuredMinShare               float64
	RealtimeMinShare                  float64
	IncidentResponseMinDue            int
	IncidentResponseMinShare          float64
	CrossCuttingMinAreas              int
	IntegralCoverageMinShare          float64
	IntegralCoverageMinAreas          int
	ServiceQualityMinShare            float64
	ContinuousImprovementMinSLAs      int
	OpenDataMinShare                  float64
	ExternalCollaborationMinProviders int
	AdaptiveMinNew                    int
}

// DefaultConfig returns the defaults of maturity.md.
func DefaultConfig() Config {
	return Config{
		Window:        30 * Day,
		Adaptation:    90 * Day,
		MinSamples:    10,
		LiveIntervals: 2,

		PilotMinServices:                  1,
		AreasCollaboratingMinAreas:        2,
		AreasIntegratedMinAreas:           3,
		ExternalPartnerMinProviders:       1,
		ServicesIntegratedMinShare:        0.5,
		SLACoverageConcessionMinServices:  1,
		SLACoverageConcessionMinShare:     0.9,
		SLACoverageOwnMinServices:         1,
		SLACoverageOwnMinShare:            0.9,
		SLAMeasuredMinShare:               0.9,
		RealtimeMinShare:                  0.9,
		IncidentResponseMinDue:            1,
		IncidentResponseMinShare:          0.9,
		CrossCuttingMinAreas:              4,
		IntegralCoverageMinShare:          1.0,
		IntegralCoverageMinAreas:          6,
		ServiceQualityMinShare:            0.95,
		ContinuousImprovementMinSLAs:      1,
		OpenDataMinShare:                  0.5,
		ExternalCollaborationMinProviders: 3,
		AdaptiveMinNew:                    1,
	}
}

type kind int

const (
	kindDuration kind = iota // positive duration
	kindCount                // whole number >= 1
	kindShare                // number in [0, 1]
)

// setting ties a key of the criteria file to a field of Config.
type setting struct {
	key   string // dotted path in the criteria file
	kind  kind
	dur   *time.Duration
	count *int
	share *float64
}

func (c *Config) settings() []setting {
	d := func(key string, p *time.Duration) setting { return setting{key: key, kind: kindDuration, dur: p} }
	n := func(key string, p *int) setting { return setting{key: key, kind: kindCount, count: p} }
	s := func(key string, p *float64) setting { return setting{key: key, kind: kindShare, share: p} }
	return []setting{
		d("window", &c.Window),
		d("adaptation_window", &c.Adaptation),
		n("min_samples", &c.MinSamples),
		n("live_intervals", &c.LiveIntervals),
		n("criteria.pilot.min_services", &c.PilotMinServices),
		n("criteria.areas_collaborating.min_areas", &c.AreasCollaboratingMinAreas),
		n("criteria.areas_integrated.min_areas", &c.AreasIntegratedMinAreas),
		n("criteria.external_partner.min_providers", &c.ExternalPartnerMinProviders),
		s("criteria.services_integrated.min_share", &c.ServicesIntegratedMinShare),
		n("criteria.sla_coverage_concession.min_services", &c.SLACoverageConcessionMinServices),
		s("criteria.sla_coverage_concession.min_share", &c.SLACoverageConcessionMinShare),
		n("criteria.sla_coverage_own.min_services", &c.SLACoverageOwnMinServices),
		s("criteria.sla_coverage_own.min_share", &c.SLACoverageOwnMinShare),
		s("criteria.sla_measured.min_share", &c.SLAMeasuredMinShare),
		s("criteria.realtime.min_share", &c.RealtimeMinShare),
		n("criteria.incident_response.min_due", &c.IncidentResponseMinDue),
		s("criteria.incident_response.min_share", &c.IncidentResponseMinShare),
		n("criteria.cross_cutting.min_areas", &c.CrossCuttingMinAreas),
		s("criteria.integral_coverage.min_share", &c.IntegralCoverageMinShare),
		n("criteria.integral_coverage.min_areas", &c.IntegralCoverageMinAreas),
		s("criteria.service_quality.min_share", &c.ServiceQualityMinShare),
		n("criteria.continuous_improvement.min_slas", &c.ContinuousImprovementMinSLAs),
		s("criteria.open_data.min_share", &c.OpenDataMinShare),
		n("criteria.external_collaboration.min_providers", &c.ExternalCollaborationMinProviders),
		n("criteria.adaptive.min_new", &c.AdaptiveMinNew),
	}
}

// Validate reports every out-of-range value at once, each naming its key in
// the criteria file.
func (c Config) Validate() error {
	var errs []error
	for _, s := range c.settings() {
		if err := s.check(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// check reports a value of s out of range.
func (s setting) check() error {
	switch s.kind {
	case kindDuration:
		if *s.dur <= 0 {
			return fmt.Errorf("%s: %s, got %s", s.key, s.expected(), *s.dur)
		}
	case kindCount:
		if *s.count < 1 {
			return fmt.Errorf("%s: %s, got %d", s.key, s.expected(), *s.count)
		}
	case kindShare:
		if !(*s.share >= 0 && *s.share <= 1) {
			return fmt.Errorf("%s: %s, got %v", s.key, s.expected(), *s.share)
		}
	}
	return nil
}

// expected describes the form a value of s must have.
func (s setting) expected() string {
	switch s.kind {
	case kindDuration:
		return `must be a positive duration such as "30d" or "720h"`
	case kindCount:
		return "must be a whole number of at least 1"
	default:
		return "must be a number between 0 and 1"
	}
}
