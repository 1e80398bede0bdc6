using System.Globalization;
using System.Text;
using Attention.Reference.Tensors;

namespace Attention.Cli.Trace;

/// <summary>
/// Small, dependency-free SVG pictures of attention maps from a trace: SE's channel weights s as bars, CA's
/// a_h × a_w map per channel as heat maps, GCT's gate per channel as bars around 1.
/// </summary>
public static class TraceSvg
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>The pictures a trace supports, as (file name, SVG text).</summary>
    public static IEnumerable<(string File, string Svg)> Render(string module, IReadOnlyList<TraceStep> steps, string caseName)
    {
        DenseTensor<double>? Find(string name) => steps.LastOrDefault(s => s.Phase == "forward" && s.Name == name)?.Value;
        switch (module)
        {
            case "se" when Find("s") is { Rank: 2 } s:
                yield return ("se_channel_weights.svg", Bars(s, $"SE channel weights s = gate(e) — {caseName}", 0, 1, null));
                break;
            case "gct" when Find("gate") is { } g:
                var gate = g.Rank == 2 ? g : g.Reshape(g.Dim(0), g.Length / g.Dim(0));
                yield return ("gct_gate.svg", Bars(gate, $"GCT gate 1 + tanh(u) per channel — {caseName}", 0, 2, 1));
                break;
            case "ca" when Find("a_h") is { Rank: >= 3 } ah && Find("a_w") is { Rank: >= 3 } aw:
                yield return ("ca_attention_map.svg", HeatMaps(ah, aw, $"CA attention a_h(h)·a_w(w), sample 0 — {caseName}"));
                break;
        }
    }

    /// <summary>Bars of a [N, C] tensor: one row of bars per sample (at most 4), fixed value range [lo, hi].</summary>
    public static string Bars(DenseTensor<double> t, string title, double lo, double hi, double? reference)
    {
        int n = Math.Min(t.Dim(0), 4), c = t.Dim(1);
        double barW = Math.Clamp(640.0 / c, 2, 24), plotW = barW * c, rowH = 120, left = 50, top = 40;
        double width = left + plotW + 20, height = top + n * (rowH + 30) + 10;
        var svg = Begin(width, height, title);
        for (int i = 0; i < n; i++)
        {
            double y0 = top + i * (rowH + 30);
            svg.Append(Inv, $"<text x=\"4\" y=\"{y0 + rowH / 2:0.#}\" font-size=\"11\">n={i}</text>");
            svg.Append(Inv, $"<rect x=\"{left}\" y=\"{y0:0.#}\" width=\"{plotW:0.#}\" height=\"{rowH}\" fill=\"#f6f6f6\"/>");
            svg.Append(Inv, $"<text x=\"{left - 4}\" y=\"{y0 + 10:0.#}\" font-size=\"9\" text-anchor=\"end\">{hi}</text>");
            svg.Append(Inv, $"<text x=\"{left - 4}\" y=\"{y0 + rowH:0.#}\" font-size=\"9\" text-anchor=\"end\">{lo}</text>");
            for (int ch = 0; ch < c; ch++)
            {
                double v = Math.Clamp(double.IsNaN(t[i, ch]) ? lo : t[i, ch], lo, hi);
                double h = (v - lo) / (hi - lo) * rowH;
                svg.Append(Inv, $"<rect x=\"{left + ch * barW:0.##}\" y=\"{y0 + rowH - h:0.##}\" width=\"{Math.Max(barW - 1, 1):0.##}\" height=\"{h:0.##}\" fill=\"#3b6ea5\"><title>channel {ch}: {t[i, ch]:R}</title></rect>");
            }
            if (reference is { } r)
            {
                double yr = y0 + rowH - (r - lo) / (hi - lo) * rowH;
                svg.Append(Inv, $"<line x1=\"{left}\" x2=\"{left + plotW:0.#}\" y1=\"{yr:0.#}\" y2=\"{yr:0.#}\" stroke=\"#c33\" stroke-dasharray=\"4 3\"/>");
            }
            svg.Append(Inv, $"<text x=\"{left}\" y=\"{y0 + rowH + 14:0.#}\" font-size=\"10\">channels 0…{c - 1}</text>");
        }
        return End(svg);
    }

    /// <summary>
    /// One heat map per CA module of a network: the mean over channels of a_h[0, c, h] · a_w[0, c, w] (gates as
    /// [N, C, L]), four to a row, on a shared [0, 1] colour scale.
    /// </summary>
    public static string MeanMaps(IReadOnlyList<(string Module, DenseTensor<double> Ah, DenseTensor<double> Aw)> maps, string title)
    {
        double tile = 96;
        int cols = Math.Min(maps.Count, 4), rows = (maps.Count + cols - 1) / cols;
        double width = 20 + cols * (tile + 40), height = 40 + rows * (tile + 34) + 30;
        var svg = Begin(width, height, title);
        for (int k = 0; k <= 20; k++)
            svg.Append(Inv, $"<rect x=\"{20 + k * 8}\" y=\"{height - 24:0.#}\" width=\"8\" height=\"10\" fill=\"{Colour(k / 20.0)}\"/>");
        svg.Append(Inv, $"<text x=\"20\" y=\"{height - 4:0.#}\" font-size=\"9\">0</text><text x=\"180\" y=\"{height - 4:0.#}\" font-size=\"9\">1</text>");
        for (int m = 0; m < maps.Count; m++)
        {
            var (name, ah, aw) = maps[m];
            int c = ah.Dim(1), hh = ah.Dim(2), ww = aw.Dim(2);
            double cell = tile / Math.Max(hh, ww), x0 = 20 + m % cols * (tile + 40), y0 = 40 + m / cols * (tile + 34);
            svg.Append(Inv, $"<text x=\"{x0:0.#}\" y=\"{y0 - 4:0.#}\" font-size=\"9\">{Escape(name)} (C={c})</text>");
            for (int h = 0; h < hh; h++)
                for (int w = 0; w < ww; w++)
                {
                    double v = 0;
                    for (int ch = 0; ch < c; ch++) v += ah.Data[ch * hh + h] * aw.Data[ch * ww + w];
                    v /= c;
                    svg.Append(Inv, $"<rect x=\"{x0 + w * cell:0.##}\" y=\"{y0 + h * cell:0.##}\" width=\"{cell:0.##}\" height=\"{cell:0.##}\" fill=\"{Colour(v)}\"><title>{Escape(name)} h={h} w={w}: {v:R}</title></rect>");
                }
        }
        return End(svg);
    }

    /// <summary>Heat maps of a_h[0, c, h] · a_w[0, c, w] for the first 16 channels, on a shared [0, 1] colour scale.</summary>
    public static string HeatMaps(DenseTensor<double> ah, DenseTensor<double> aw, string title)
    {
        int c = Math.Min(ah.Dim(1), 16), hh = ah.Dim(2), ww = aw.Dim(2);
        if (c < ah.Dim(1)) title += $" (channels 0–{c - 1} of {ah.Dim(1)})";
        double cell = Math.Clamp(96.0 / Math.Max(hh, ww), 2, 16), tileW = ww * cell, tileH = hh * cell;
        int cols = Math.Min(c, 4), rows = (c + cols - 1) / cols;
        double width = 20 + cols * (tileW + 20), height = 40 + rows * (tileH + 30) + 30;
        var svg = Begin(width, height, title);
        // Colour scale 0 … 1.
        for (int k = 0; k <= 20; k++)
            svg.Append(Inv, $"<rect x=\"{20 + k * 8}\" y=\"{height - 24:0.#}\" width=\"8\" height=\"10\" fill=\"{Colour(k / 20.0)}\"/>");
        svg.Append(Inv, $"<text x=\"20\" y=\"{height - 4:0.#}\" font-size=\"9\">0</text><text x=\"180\" y=\"{height - 4:0.#}\" font-size=\"9\">1</text>");
        for (int ch = 0; ch < c; ch++)
        {
            double x0 = 20 + ch % cols * (tileW + 20), y0 = 40 + ch / cols * (tileH + 30);
            svg.Append(Inv, $"<text x=\"{x0:0.#}\" y=\"{y0 - 4:0.#}\" font-size=\"10\">c={ch}</text>");
            for (int h = 0; h < hh; h++)
                for (int w = 0; w < ww; w++)
                {
                    double v = ah.Data[(0 * ah.Dim(1) + ch) * hh + h] * aw.Data[(0 * aw.Dim(1) + ch) * ww + w];
                    svg.Append(Inv, $"<rect x=\"{x0 + w * cell:0.##}\" y=\"{y0 + h * cell:0.##}\" width=\"{cell:0.##}\" height=\"{cell:0.##}\" fill=\"{Colour(v)}\"><title>h={h} w={w}: {v:R}</title></rect>");
                }
        }
        return End(svg);
    }

    private static string Colour(double v)
    {
        double t = double.IsNaN(v) ? 0 : Math.Clamp(v, 0, 1);
        // white → dark blue
        int r = (int)Math.Round(255 * (1 - t) + 20 * t), g = (int)Math.Round(255 * (1 - t) + 60 * t), b = (int)Math.Round(255 * (1 - t) + 140 * t);
        return $"#{r:x2}{g:x2}{b:x2}";
    }

    private static StringBuilder Begin(double width, double height, string title)
    {
        width = Math.Max(width, 20 + 7.2 * title.Length);
        var svg = new StringBuilder();
        svg.Append(Inv, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:0}\" height=\"{height:0}\" viewBox=\"0 0 {width:0} {height:0}\" font-family=\"sans-serif\">");
        svg.Append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
        svg.Append(Inv, $"<text x=\"10\" y=\"20\" font-size=\"13\">{Escape(title)}</text>");
        return svg;
    }

    private static string End(StringBuilder svg) => svg.Append("</svg>\n").ToString();

    private static string Escape(string s) => s.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;");
}
