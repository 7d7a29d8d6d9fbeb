package maturity

import (
	"fmt"
	"math/big"
	"strings"
)

// rule is one row of the criteria table of maturity.md.
type rule struct {
	level int
	id    string
	eval  func(*facts) Criterion // fills every field but Level, LevelName and ID
}

// rules are in the order of the table of maturity.md.
var rules = []rule{
	{1, "pilot", pilot},
	{2, "areas_collaborating", func(f *facts) Criterion { return f.areasRule(f.cfg.AreasCollaboratingMinAreas) }},
	{3, "areas_integrated", func(f *facts) Criterion { return f.areasRule(f.cfg.AreasIntegratedMinAreas) }},
	{3, "external_partner", func(f *facts) Criterion { return f.externalRule(f.cfg.ExternalPartnerMinProviders) }},
	{3, "services_integrated", servicesIntegrated},
	{4, "sla_coverage_concession", func(f *facts) Criterion {
		return f.coverageRule(DeliveryConcession, f.cfg.SLACoverageConcessionMinServices, f.cfg.SLACoverageConcessionMinShare)
	}},
	{4, "sla_coverage_own", func(f *facts) Criterion {
		return f.coverageRule(DeliveryOwn, f.cfg.SLACoverageOwnMinServices, f.cfg.SLACoverageOwnMinShare)
	}},
	{4, "sla_measured", slaMeasured},
	{4, "realtime", realtime},
	{4, "incident_response", incidentResponse},
	{4, "cross_cutting", func(f *facts) Criterion { return f.areasRule(f.cfg.CrossCuttingMinAreas) }},
	{5, "integral_coverage", integralCoverage},
	{5, "service_quality", serviceQuality},
	{5, "continuous_improvement", continuousImprovement},
	{5, "open_data", openData},
	{5, "external_collaboration", func(f *facts) Criterion { return f.externalRule(f.cfg.ExternalCollaborationMinProviders) }},
	{5, "adaptive", adaptive},
}

// countCriterion is a criterion n >= threshold.
func countCriterion(n, threshold int, explanation string) Criterion {
	return Criterion{
		Passed:        n >= threshold,
		Value:         new(float64(n)),
		Threshold:     float64(threshold),
		ThresholdText: fmt.Sprintf(">= %d", threshold),
		Explanation:   fmt.Sprintf("%s (%s)", explanation, vsCount(n, threshold)),
	}
}

// shareCriterion is a criterion num/den >= threshold, with no data when den
// is 0. what says what num counts among den, e.g. "concession services have
// an SLA"; empty says what is missing when den is 0.
func shareCriterion(num, den int, threshold float64, what, empty string) Criterion {
	c := Criterion{Threshold: threshold, ThresholdText: ">= " + limit(threshold)}
	if den == 0 {
		c.Explanation = empty + " (no data)"
		return c
	}
	v := float64(num) / float64(den)
	c.Value, c.Passed = &v, v >= threshold
	c.Explanation = fmt.Sprintf("%d of %d %s (%s)", num, den, what, vsShare(v, threshold))
	return c
}

// pilot: at least PilotMinServices services reporting in C.
func pilot(f *facts) Criterion {
	return countCriterion(f.reporting, f.cfg.PilotMinServices,
		fmt.Sprintf("%s reporting in the last %s", count(f.reporting, "service"), span(f.cfg.Window)))
}

// areasRule: areas(C) >= threshold.
func (f *facts) areasRule(threshold int) Criterion {
	return countCriterion(len(f.areas), threshold,
		fmt.Sprintf("%s reporting in the last %s%s", count(len(f.areas), "service area"), span(f.cfg.Window), list(f.areas)))
}

// externalRule: external(C) >= threshold.
func (f *facts) externalRule(threshold int) Criterion {
	return countCriterion(len(f.externals), threshold,
		fmt.Sprintf("%s of concession services reporting in the last %s%s", count(len(f.externals), "external provider"), span(f.cfg.Window), list(f.externals)))
}

// servicesIntegrated: share of catalogued services reporting in C.
func servicesIntegrated(f *facts) Criterion {
	return shareCriterion(f.reporting, len(f.services), f.cfg.ServicesIntegratedMinShare,
		"catalogued services reporting in the last "+span(f.cfg.Window), "no services in the catalogue")
}

// coverageRule: at least minServices services of a delivery mode, and share of
// them with at least one SLA.
func (f *facts) coverageRule(delivery string, minServices int, minShare float64) Criterion {
	num, den := 0, 0
	for _, s := range f.services {
		if s.Delivery == delivery {
			den++
			if f.hasSLA[s.ID] {
				num++
			}
		}
	}
	c := shareCriterion(num, den, minShare, delivery+" services have an SLA", fmt.Sprintf("no %s services in the catalogue", delivery))
	c.ThresholdText += fmt.Sprintf(", with >= %s", count(minServices, delivery+" service"))
	if den > 0 && den < minServices {
		c.Passed = false
		c.Explanation += fmt.Sprintf(", but fewer than %s in the catalogue", count(minServices, delivery+" service"))
	}
	return c
}

// slaMeasured: share of SLAs measured in C.
func slaMeasured(f *facts) Criterion {
	num := 0
	for _, k := range f.slas {
		if k.measuredC {
			num++
		}
	}
	return shareCriterion(num, len(f.slas), f.cfg.SLAMeasuredMinShare,
		fmt.Sprintf("SLAs have at least %s in the last %s", count(f.cfg.MinSamples, "sample"), span(f.cfg.Window)), "no SLAs defined")
}

// realtime: share of catalogued services live.
func realtime(f *facts) Criterion {
	num := 0
	for _, s := range f.services {
		if f.live(s) {
			num++
		}
	}
	return shareCriterion(num, len(f.services), f.cfg.RealtimeMinShare,
		fmt.Sprintf("catalogued services reported within the last %s", count(f.cfg.LiveIntervals, "reporting interval")), "no services in the catalogue")
}

// incidentResponse: at least IncidentResponseMinDue incidents due in C, and
// share of them resolved on time.
func incidentResponse(f *facts) Criterion {
	num, den := 0, 0
	for _, i := range f.incidents {
		if f.inC(i.Deadline) {
			den++
			if f.resolved(i) && !i.ResolvedAt.After(i.Deadline) {
				num++
			}
		}
	}
	c := shareCriterion(num, den, f.cfg.IncidentResponseMinShare,
		fmt.Sprintf("incidents due in the last %s resolved on time", span(f.cfg.Window)),
		fmt.Sprintf("no incident due in the last %s", span(f.cfg.Window)))
	c.ThresholdText += fmt.Sprintf(", with >= %s due", count(f.cfg.IncidentResponseMinDue, "incident"))
	if den > 0 && den < f.cfg.IncidentResponseMinDue {
		c.Passed = false
		c.Explanation += fmt.Sprintf(", but fewer than %s due", count(f.cfg.IncidentResponseMinDue, "incident"))
	}
	return c
}

// integralCoverage: share of catalogued services reporting in C and with an
// SLA, and areas(C) >= IntegralCoverageMinAreas.
func integralCoverage(f *facts) Criterion {
	num := 0
	for _, s := range f.services {
		if s.MeasurementsC > 0 && f.hasSLA[s.ID] {
			num++
		}
	}
	minAreas := f.cfg.IntegralCoverageMinAreas
	c := shareCriterion(num, len(f.services), f.cfg.IntegralCoverageMinShare,
		fmt.Sprintf("catalogued services report in the last %s and have an SLA", span(f.cfg.Window)), "no services in the catalogue")
	c.ThresholdText += fmt.Sprintf(", with >= %s reporting", count(minAreas, "area"))
	if c.Value != nil {
		c.Passed = c.Passed && len(f.areas) >= minAreas
		c.Explanation += fmt.Sprintf("; %s reporting (%s)", count(len(f.areas), "area"), vsCount(len(f.areas), minAreas))
	}
	return c
}

// serviceQuality: share of SLAs measured in C that are met in C.
func serviceQuality(f *facts) Criterion {
	num, den := 0, 0
	for _, k := range f.slas {
		if k.measuredC {
			den++
			if k.metC {
				num++
			}
		}
	}
	return shareCriterion(num, den, f.cfg.ServiceQualityMinShare,
		fmt.Sprintf("measured SLAs met their objective in the last %s", span(f.cfg.Window)),
		fmt.Sprintf("no SLA measured in the last %s", span(f.cfg.Window)))
}

// continuousImprovement: over the SLAs measured in both P and C (at least
// ContinuousImprovementMinSLAs), mean compliance in C >= mean in P, and every
// one not met in P has a strictly higher compliance in C than in P. Means are
// compared exactly, as fractions. Value is mean C minus mean P.
func continuousImprovement(f *facts) Criterion {
	c := Criterion{
		ThresholdText: fmt.Sprintf(">= 0.00 (mean compliance in C minus P), with >= %s measured in both windows and every SLA not met in P improving",
			count(f.cfg.ContinuousImprovementMinSLAs, "SLA")),
	}
	var sumC, sumP big.Rat
	var n, behind int
	var stuck []string
	for _, k := range f.slas {
		if !k.measuredC || !k.measuredP {
			continue
		}
		n++
		sumC.Add(&sumC, big.NewRat(int64(k.C.Meeting), int64(k.C.Samples)))
		sumP.Add(&sumP, big.NewRat(int64(k.P.Meeting), int64(k.P.Samples)))
		if !k.metP {
			behind++
			if int64(k.C.Meeting)*int64(k.P.Samples) <= int64(k.P.Meeting)*int64(k.C.Samples) {
				stuck = append(stuck, fmt.Sprintf("%s/%s (%s → %s)", k.Service, k.KPI,
					decimal(compliance(k.P), compliance(k.C)), decimal(compliance(k.C), compliance(k.P))))
			}
		}
	}
	if n == 0 {
		c.Explanation = fmt.Sprintf("no SLA measured in both the last %s and the %s before (no data)", span(f.cfg.Window), span(f.cfg.Window))
		return c
	}
	diff := new(big.Rat).Sub(&sumC, &sumP)
	diff.Quo(diff, big.NewRat(int64(n), 1))
	d, _ := diff.Float64()
	c.Value = &d
	c.Passed = diff.Sign() >= 0 && n >= f.cfg.ContinuousImprovementMinSLAs && len(stuck) == 0
	meanC, _ := new(big.Rat).Quo(&sumC, big.NewRat(int64(n), 1)).Float64()
	meanP, _ := new(big.Rat).Quo(&sumP, big.NewRat(int64(n), 1)).Float64()
	sign := "≥"
	if diff.Sign() < 0 {
		sign = "<"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "mean compliance %s in the last %s vs %s in the %s before, over %s measured in both (%s %s 0)",
		decimal(meanC, meanP), span(f.cfg.Window), decimal(meanP, meanC), span(f.cfg.Window), count(n, "SLA"), signed(d), sign)
	if n < f.cfg.ContinuousImprovementMinSLAs {
		fmt.Fprintf(&b, "; fewer than %s", count(f.cfg.ContinuousImprovementMinSLAs, "SLA"))
	}
	switch {
	case len(stuck) > 0:
		fmt.Fprintf(&b, "; not met before and not improved: %s", strings.Join(stuck, ", "))
	case behind == 1:
		b.WriteString("; the SLA not met before improved")
	case behind > 1:
		fmt.Fprintf(&b, "; all %d SLAs not met before improved", behind)
	}
	c.Explanation = b.String()
	return c
}

// signed is d with its sign, "+0.02" or "-0.001", never rounded across 0.
func signed(d float64) string {
	s := decimal(d, 0)
	if d >= 0 {
		return "+" + s
	}
	return s
}

// openData: share of catalogued services with open data.
func openData(f *facts) Criterion {
	num := 0
	for _, s := range f.services {
		if s.OpenData {
			num++
		}
	}
	return shareCriterion(num, len(f.services), f.cfg.OpenDataMinShare,
		"catalogued services publish open data", "no services in the catalogue")
}

// adaptive: catalogued services first registered in A plus SLAs first
// defined in A, at least AdaptiveMinNew.
func adaptive(f *facts) Criterion {
	services, slas := 0, 0
	for _, s := range f.services {
		if f.inA(s.FirstRegistered) {
			services++
		}
	}
	for _, k := range f.slas {
		if f.inA(k.FirstDefined) {
			slas++
		}
	}
	return countCriterion(services+slas, f.cfg.AdaptiveMinNew,
		fmt.Sprintf("%s and %s in the last %s", count(services, "new service"), count(slas, "new SLA"), span(f.cfg.Adaptation)))
}
