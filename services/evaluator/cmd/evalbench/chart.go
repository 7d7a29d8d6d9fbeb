package main

import (
	"fmt"
	"maps"
	"os"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// writeChart writes the curves as one PNG of three panels: evaluation time
// against the number of municipalities (both readers, no older history),
// and evaluation time and peak RSS against the older measurements stored
// (largest data set).
func writeChart(path string, rs []result) error {
	bySize := map[string]plotter.XYs{}
	var history, memory plotter.XYs
	largest := 0
	for _, r := range rs {
		largest = max(largest, r.Municipalities)
	}
	var historyFirst, historyCold, historyNewDay plotter.XYs
	for _, r := range rs {
		if r.Older == 0 {
			if r.Reader == "raw" {
				bySize["event tables only (before)"] = append(bySize["event tables only (before)"], plotter.XY{X: float64(r.Municipalities), Y: r.BestSeconds})
			} else {
				bySize["rollups, periodic"] = append(bySize["rollups, periodic"], plotter.XY{X: float64(r.Municipalities), Y: r.NextSeconds})
				bySize["rollups, first after a start"] = append(bySize["rollups, first after a start"], plotter.XY{X: float64(r.Municipalities), Y: r.FirstSeconds})
				bySize["rollups, first with nothing kept"] = append(bySize["rollups, first with nothing kept"], plotter.XY{X: float64(r.Municipalities), Y: r.ColdSeconds})
				bySize["rollups, first of a day (running)"] = append(bySize["rollups, first of a day (running)"], plotter.XY{X: float64(r.Municipalities), Y: r.NewDaySeconds})
			}
		}
		if r.Municipalities == largest && r.Reader == "rollups" {
			history = append(history, plotter.XY{X: float64(r.Older) / 1e6, Y: r.NextSeconds})
			historyFirst = append(historyFirst, plotter.XY{X: float64(r.Older) / 1e6, Y: r.FirstSeconds})
			historyCold = append(historyCold, plotter.XY{X: float64(r.Older) / 1e6, Y: r.ColdSeconds})
			historyNewDay = append(historyNewDay, plotter.XY{X: float64(r.Older) / 1e6, Y: r.NewDaySeconds})
			memory = append(memory, plotter.XY{X: float64(r.Older) / 1e6, Y: r.PeakRSSMiB})
		}
	}
	size := plot.New()
	size.Title.Text = "Evaluation time by size"
	size.X.Label.Text = "municipalities (60 days of hourly measurements)"
	size.Y.Label.Text = "seconds"
	var lines []any
	for _, rd := range slices.Sorted(maps.Keys(bySize)) {
		lines = append(lines, rd, bySize[rd])
	}
	if err := plotutil.AddLinePoints(size, lines...); err != nil {
		return err
	}
	hist := plot.New()
	hist.Title.Text = fmt.Sprintf("Evaluation time, %d municipalities", largest)
	hist.X.Label.Text = "older measurements stored (millions)"
	hist.Y.Label.Text = "seconds"
	if err := plotutil.AddLinePoints(hist, "rollups, periodic", history, "rollups, first after a start", historyFirst,
		"rollups, first with nothing kept", historyCold, "rollups, first of a day (running)", historyNewDay); err != nil {
		return err
	}
	mem := plot.New()
	mem.Title.Text = fmt.Sprintf("Evaluator peak RSS, %d municipalities", largest)
	mem.X.Label.Text = "older measurements stored (millions)"
	mem.Y.Label.Text = "MiB"
	if err := plotutil.AddLinePoints(mem, "rollups (soft limit 192 MiB)", memory); err != nil {
		return err
	}
	for _, p := range []*plot.Plot{size, hist, mem} {
		p.Y.Min = 0
		p.X.Min = 0
		p.Legend.Top = true
		p.Legend.Left = true
	}
	img := vgimg.New(18*vg.Inch, 5*vg.Inch)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 3, PadX: vg.Inch / 2, PadTop: vg.Inch / 8, PadBottom: vg.Inch / 8, PadLeft: vg.Inch / 8, PadRight: vg.Inch / 4}
	plots := [][]*plot.Plot{{size, hist, mem}}
	canvases := plot.Align(plots, tiles, dc)
	for i, p := range plots[0] {
		p.Draw(canvases[0][i])
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
