package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
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
	headerRoom  = 0.75 * vg.Inch // at least
	lineHeight  = vg.Length(14)  // points: a line of the header
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
	incomplete := func(broker string, rate float64) bool {
		return value(broker, rate, func(r *benchResult) float64 { return float64(r.Missing) }) > 0
	}
	throughput, legend, err := dotPlot("Throughput: messages received per second", "msgs/s", brokers, rates,
		func(b string, rate float64) float64 {
			return value(b, rate, func(r *benchResult) float64 { return r.ReceiveRate })
		},
		incomplete, func(v float64) string { return fmt.Sprintf("%.0f", v) }, count3)
	if err != nil {
		return err
	}
	latency, _, err := dotPlot("p99 latency, publish call to handler start", "latency", brokers, rates,
		func(b string, rate float64) float64 {
			return value(b, rate, func(r *benchResult) float64 { return float64(r.Latency.P99) })
		},
		incomplete, func(v float64) string { return ns(int64(v)) }, durationTick)
	if err != nil {
		return err
	}
	notes := []string{rec.Command, rec.Machine + "; " + rec.Date}
	if slices.ContainsFunc(rec.Results, func(r *benchResult) bool { return r.Missing > 0 }) {
		notes = append(notes, "* incomplete run: some deliveries had not arrived when --drain ended; its figures cover those that had (see the record)")
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
	// One legend for both panels, in the header's right corner, where it
	// hides no dot; the notes wrap to the room left of it.
	legendArea := dc
	legendArea.Max.Y -= vg.Points(6)
	legendArea.Max.X -= vg.Points(10)
	legend.Draw(legendArea)
	lr := legend.Rectangle(legendArea)
	room := dc.Size().X - (lr.Max.X - lr.Min.X) - vg.Points(40)
	var lines []string
	for _, note := range notes {
		lines = append(lines, wrap(note, room, func(s string) vg.Length { return header.Rectangle(s).Max.X })...)
	}
	top := dc.Max.Y - vg.Points(8)
	for _, line := range lines {
		dc.FillText(header, vg.Point{X: dc.Min.X + vg.Points(10), Y: top}, line)
		top -= lineHeight
	}
	area := dc
	area.Max.Y -= max(headerRoom, vg.Length(len(lines))*lineHeight+vg.Points(14))
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

// wrap breaks text at spaces into lines no wider than room (as width
// measures them); a word wider than room gets a line of its own.
func wrap(text string, room vg.Length, width func(string) vg.Length) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		switch {
		case line == "":
			line = w
		case width(line+" "+w) <= room:
			line += " " + w
		default:
			lines = append(lines, line)
			line = w
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
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
	if r.Emulator != "" {
		return r.Transport + "\n(emulator)"
	}
	return r.Transport
}

// dotPlot plots one value per broker and rate on a logarithmic axis (the
// brokers and rates span orders of magnitude): a group of dots per broker,
// one per rate, each labelled with its value (and "*" when its run was
// incomplete); with two rates the first one's labels go left of their dots
// and the second one's right, so that close values do not overlap. Missing
// values are left out. It returns the plot and a legend of the rates, for
// the caller to place.
func dotPlot(title, unit string, brokers []string, rates []float64, value func(string, float64) float64,
	incomplete func(string, float64) bool, label, tick func(float64) string) (*plot.Plot, plot.Legend, error) {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = font.From(plot.DefaultFont, 11)
	p.Y.Label.Text = unit + " (log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = logTicks{format: tick}
	legend := plot.NewLegend()
	legend.Top = true
	legend.TextStyle.Font = font.From(plot.DefaultFont, 10)
	legend.Padding = vg.Points(3)
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
			t := label(v)
			if incomplete(b, rate) {
				t += "*"
			}
			texts = append(texts, t)
		}
		if len(xys) == 0 {
			continue
		}
		dots, err := plotter.NewScatter(xys)
		if err != nil {
			return nil, legend, err
		}
		dots.GlyphStyle.Color = palette[i%len(palette)]
		dots.GlyphStyle.Radius = vg.Points(5)
		dots.GlyphStyle.Shape = shapes[i%len(shapes)]
		labels, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: texts})
		if err != nil {
			return nil, legend, err
		}
		labels.Offset = vg.Point{X: vg.Points(8)}
		left := len(rates) == 2 && i == 0
		if left {
			labels.Offset.X = -vg.Points(8)
		}
		for k := range labels.TextStyle {
			labels.TextStyle[k].Font = font.From(plot.DefaultFont, 8)
			labels.TextStyle[k].YAlign = text.YCenter
			if left {
				labels.TextStyle[k].XAlign = text.XRight
			}
		}
		p.Add(dots, labels)
		legend.Add(rateText(rate), dots)
	}
	if lo > hi {
		lo, hi = 1, 10 // nothing measured
	}
	p.Y.Min, p.Y.Max = lo/3, hi*3
	p.X.Min, p.X.Max = -0.5, float64(len(brokers))-0.5
	p.NominalX(brokers...)
	return p, legend, nil
}

// logTicks are plot.LogTicks labelled by format.
type logTicks struct{ format func(float64) string }

func (t logTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.LogTicks{Prec: -1}.Ticks(min, max)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = t.format(ticks[i].Value)
		}
	}
	return ticks
}

// durationTick renders a latency in nanoseconds for an axis: 100ns, 1µs,
// ..., 1s, 10s, 100s.
func durationTick(v float64) string {
	for _, u := range []struct {
		size float64
		unit string
	}{{1e9, "s"}, {1e6, "ms"}, {1e3, "µs"}} {
		if v >= u.size {
			return strconv.FormatFloat(v/u.size, 'f', -1, 64) + u.unit
		}
	}
	return strconv.FormatFloat(v, 'f', -1, 64) + "ns"
}

// count3 renders a count for an axis: 1, 10, 100, 1k, 10k, 100k, 1M, ...
func count3(v float64) string {
	switch {
	case v >= 1e9:
		return strconv.FormatFloat(v/1e9, 'f', -1, 64) + "G"
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}
