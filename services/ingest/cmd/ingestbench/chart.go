package main

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// writeChart draws the drain rate against the measurements already stored,
// with the two baselines and the target as horizontal lines.
func writeChart(path string, r *report) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Ingest drain of %d events (batches of %d, ClickHouse %s)", r.Drains[0].Events, r.BatchSize, r.ClickHouseVersion)
	p.X.Label.Text = "measurements already stored (millions)"
	p.Y.Label.Text = "events per second"
	p.Y.Min = 0
	var drains plotter.XYs
	maxX := 0.0
	for _, d := range r.Drains {
		x := float64(d.Stored) / 1e6
		drains = append(drains, plotter.XY{X: x, Y: d.PerSecond})
		maxX = max(maxX, x)
	}
	maxX = max(maxX, 1)
	line, points, err := plotter.NewLinePoints(drains)
	if err != nil {
		return err
	}
	line.Color = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	line.Width = vg.Points(2)
	points.Shape = draw.CircleGlyph{}
	points.Color = line.Color
	p.Add(line, points)
	p.Legend.Add("drain (one ingest process)", line, points)
	for _, h := range []struct {
		label string
		y     float64
		c     color.Color
		dash  []vg.Length
	}{
		{"baseline: JetStream consume-only", r.ConsumeOnlyPerSecond, color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}, []vg.Length{vg.Points(6), vg.Points(3)}},
		{"baseline: ClickHouse insert-only", r.InsertOnlyPerSecond, color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff}, []vg.Length{vg.Points(2), vg.Points(2)}},
		{"target: 50,000 events/s", 50000, color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, []vg.Length{vg.Points(8), vg.Points(4)}},
	} {
		l, err := plotter.NewLine(plotter.XYs{{X: 0, Y: h.y}, {X: maxX, Y: h.y}})
		if err != nil {
			return err
		}
		l.Color, l.Dashes, l.Width = h.c, h.dash, vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(h.label, l)
	}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	return p.Save(9*vg.Inch, 5*vg.Inch, path)
}
