package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	_ "gonum.org/v1/plot/vg/vgimg" // png
	_ "gonum.org/v1/plot/vg/vgsvg" // svg
)

// Chart geometry.
const (
	chartWidth  = 10 * vg.Inch
	chartHeight = 5 * vg.Inch
	headerRoom  = 0.75 * vg.Inch
)

// palette colours the rates, in order.
var palette = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
}

// writeChart draws throughput and p99 latency per broker and rate, with the
// command and the machine above them, to path (.png or .svg).
func writeChart(path string, rec *matrixRecord) error {
	var brokers []string // broker labels, in the order they ran
	var rates []float64
	for _, r := range rec.Results {
		if !slices.Contains(brokers, brokerLabel(r, rec.Results)) {
			brokers = append(brokers, brokerLabel(r, rec.Results))
		}
		if !slices.Contains(rates, r.Rate) {
			rates = append(rates, r.Rate)
		}
	}
	value := func(broker string, rate float64, get func(*benchResult) float64) float64 {
		for _, r := range rec.Results {
			if brokerLabel(r, rec.Results) == broker && r.Rate == rate {
				return get(r)
			}
		}
		return 0
	}
	throughput, err := dotPlot("Throughput: messages received per second", "msgs/s", brokers, rates,
		func(b string, rate float64) float64 {
			return value(b, rate, func(r *benchResult) float64 { return r.ReceiveRate })
		},
		func(v float64) string { return fmt.Sprintf("%.0f", v) })
	if err != nil {
		return err
	}
	latency, err := dotPlot("p99 latency, publish call to handler start", "ms", brokers, rates,
		func(b string, rate float64) float64 {
			return value(b, rate, func(r *benchResult) float64 { return float64(r.Latency.P99) / 1e6 })
		},
		func(v float64) string { return ns(int64(v * 1e6)) })
	if err != nil {
		return err
	}

	format := strings.TrimPrefix(filepath.Ext(path), ".")
	c, err := draw.NewFormattedCanvas(chartWidth, chartHeight, format)
	if err != nil {
		return err
	}
	dc := draw.New(c)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	header := throughput.Title.TextStyle
	header.Font = font.From(plot.DefaultFont, 9)
	header.XAlign, header.YAlign = draw.XLeft, draw.YTop
	top := dc.Max.Y - vg.Points(8)
	for _, line := range []string{rec.Command, rec.Machine + "; " + rec.Date} {
		dc.FillText(header, vg.Point{X: dc.Min.X + vg.Points(10), Y: top}, line)
		top -= vg.Points(14)
	}
	area := dc
	area.Max.Y -= headerRoom
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Points(20), PadLeft: vg.Points(6), PadRight: vg.Points(6), PadBottom: vg.Points(6)}
	cells := plot.Align([][]*plot.Plot{{throughput, latency}}, tiles, area)
	throughput.Draw(cells[0][0])
	latency.Draw(cells[0][1])

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// brokerLabel names r's broker on the chart: its scheme, or its URL when
// several results share the scheme under different URLs.
func brokerLabel(r *benchResult, all []*benchResult) string {
	for _, o := range all {
		if o.Transport == r.Transport && o.URL != r.URL {
			return r.URL
		}
	}
	if r.Transport == "" {
		return r.URL
	}
	return r.Transport
}

// dotPlot plots one value per broker and rate on a logarithmic axis (the
// brokers and rates span orders of magnitude): a group of dots per broker,
// one per rate, each labelled with its value. Missing values are left out.
func dotPlot(title, unit string, brokers []string, rates []float64, value func(string, float64) float64, label func(float64) string) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = font.From(plot.DefaultFont, 11)
	p.Y.Label.Text = unit + " (log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	lo, hi := math.Inf(1), math.Inf(-1)
	shapes := []draw.GlyphDrawer{draw.CircleGlyph{}, draw.PyramidGlyph{}, draw.BoxGlyph{}, draw.TriangleGlyph{}}
	for i, rate := range rates {
		shift := 0.15 * (float64(i) - float64(len(rates)-1)/2) // side by side within a broker's slot
		var xys plotter.XYs
		var texts []string
		for j, b := range brokers {
			v := value(b, rate)
			if v <= 0 {
				continue
			}
			lo, hi = math.Min(lo, v), math.Max(hi, v)
			xys = append(xys, plotter.XY{X: float64(j) + shift, Y: v})
			texts = append(texts, label(v))
		}
		if len(xys) == 0 {
			continue
		}
		dots, err := plotter.NewScatter(xys)
		if err != nil {
			return nil, err
		}
		dots.GlyphStyle.Color = palette[i%len(palette)]
		dots.GlyphStyle.Radius = vg.Points(5)
		dots.GlyphStyle.Shape = shapes[i%len(shapes)]
		labels, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: texts})
		if err != nil {
			return nil, err
		}
		for k := range labels.TextStyle {
			labels.TextStyle[k].Font = font.From(plot.DefaultFont, 8)
			labels.TextStyle[k].YAlign = text.YCenter
		}
		labels.Offset = vg.Point{X: vg.Points(8)}
		p.Add(dots, labels)
		p.Legend.Add(rateText(rate), dots)
	}
	if lo > hi {
		lo, hi = 1, 10 // nothing measured
	}
	p.Y.Min, p.Y.Max = lo/3, hi*3
	p.X.Min, p.X.Max = -0.5, float64(len(brokers))-0.5
	p.NominalX(brokers...)
	return p, nil
}
