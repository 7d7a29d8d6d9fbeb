package report

import (
	"math"
	"strconv"
	"strings"

	"github.com/assoliment/assoliment/services/evaluator/apiv1"
)

// Chart geometry, in the SVG's user units.
const (
	chartWidth  = 960
	chartHeight = 280
	plotLeft    = 56
	plotRight   = chartWidth - 16
	plotTop     = 12
	plotBottom  = chartHeight - 32
)

// palette tells the SLAs of one provider apart (Okabe and Ito's colours,
// without the red that marks breaches).
var palette = []string{"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#000000", "#8C564B", "#7F7F7F"}

// chart is the daily compliance of one provider's SLAs, laid out for the
// template: every coordinate is computed here, the template only writes
// them.
type chart struct {
	Width, Height                int
	Left, Right, Top, Bottom     int
	Grid                         []gridLine
	Days                         []dayTick
	Series                       []series
	Empty                        bool // no day has samples
	BreachColor, ObjectiveDashes string
}

type gridLine struct {
	Y     float64
	Label string
}

type dayTick struct {
	X     float64
	Label string
}

// series is one SLA: its daily points joined by lines where days follow
// each other, and its objective as a dashed line.
type series struct {
	Color     string
	Label     string
	Lines     []string // polyline points, one per run of days with samples
	Points    []point
	Objective float64 // y of the objective
}

type point struct {
	X, Y   float64
	Breach bool
	Title  string // date and compliance, shown on hover
}

// newChart lays out the daily compliance of p's SLAs. The vertical axis
// runs from 1 down to the lowest tenth that holds every point and
// objective, so small differences near 100 % stay visible.
func newChart(p *apiv1.ReportProvider) chart {
	c := chart{Width: chartWidth, Height: chartHeight, Left: plotLeft, Right: plotRight, Top: plotTop, Bottom: plotBottom,
		BreachColor: "#D00000", ObjectiveDashes: "6 4", Empty: true}
	low := 1.0
	n := 0
	for _, s := range p.SLAs {
		low = min(low, s.Objective)
		n = max(n, len(s.Days))
		for _, d := range s.Days {
			if d.Compliance != nil {
				low, c.Empty = min(low, *d.Compliance), false
			}
		}
	}
	low = math.Max(0, math.Floor(low*10-1e-9)/10)
	if low >= 1 {
		low = 0.9
	}
	y := func(v float64) float64 { return round(plotBottom - (v-low)/(1-low)*(plotBottom-plotTop)) }
	step := 10 // percentage points between grid lines
	switch span := 1 - low; {
	case span <= 0.3:
		step = 5
	case span > 0.6:
		step = 20
	}
	for pc := 100; float64(pc) >= low*100-1e-6; pc -= step {
		c.Grid = append(c.Grid, gridLine{Y: y(float64(pc) / 100), Label: strconv.Itoa(pc) + " %"})
	}
	slot := float64(plotRight-plotLeft) / float64(max(n, 1))
	x := func(i int) float64 { return round(plotLeft + (float64(i)+0.5)*slot) }
	if len(p.SLAs) > 0 {
		for i, d := range p.SLAs[0].Days {
			c.Days = append(c.Days, dayTick{X: x(i), Label: strings.TrimLeft(d.Date[8:], "0")})
		}
	}
	for k, s := range p.SLAs {
		sr := series{Color: palette[k%len(palette)], Label: s.Service + " · " + s.Name, Objective: y(s.Objective)}
		var run []string
		flush := func() {
			if len(run) > 1 {
				sr.Lines = append(sr.Lines, strings.Join(run, " "))
			}
			run = nil
		}
		for i, d := range s.Days {
			if d.Compliance == nil {
				flush()
				continue
			}
			px, py := x(i), y(*d.Compliance)
			run = append(run, num(px)+","+num(py))
			sr.Points = append(sr.Points, point{X: px, Y: py, Breach: d.Breach, Title: d.Date + ": " + percent(*d.Compliance, s.Objective)})
		}
		flush()
		c.Series = append(c.Series, sr)
	}
	return c
}

func round(v float64) float64 { return math.Round(v*10) / 10 }

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// percent writes a ratio as a percentage with two decimals, or as many
// more as needed for the text to compare with threshold as the ratio does
// (0.89996 against 0.9 is "89.996 %", never "90.00 %").
func percent(v, threshold float64) string {
	for prec := 2; prec <= 8; prec++ {
		s := strconv.FormatFloat(v*100, 'f', prec, 64)
		if r, _ := strconv.ParseFloat(s, 64); (r/100 >= threshold) == (v >= threshold) {
			return s + " %"
		}
	}
	return strconv.FormatFloat(v*100, 'f', -1, 64) + " %"
}

// share writes a threshold ratio as a percentage without trailing zeros:
// 0.95 is "95 %", 0.925 is "92.5 %".
func share(v float64) string {
	s := strconv.FormatFloat(v*100, 'f', 6, 64)
	return strings.TrimRight(strings.TrimRight(s, "0"), ".") + " %"
}
