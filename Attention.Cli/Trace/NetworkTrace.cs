using System.Globalization;
using System.Text;
using Attention.Cli.Commands;
using Attention.Reference.Cases;
using Attention.Reference.IO;
using Attention.Reference.Models;
using Attention.Reference.Tensors;

namespace Attention.Cli.Trace;

/// <summary>
/// <c>trace</c> on a network case: one line per module output in call order (path, kind, shape, mean, standard
/// deviation; for attention modules — SE, GCT, Coordinate Attention — the statistics of their gate), and with <c>--svg</c> the excitation of every SE
/// module across the network (the SENet paper's per-stage activation figure).
/// </summary>
public static class NetworkTrace
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Runs the case's forward pass in float64 and prints the table.</summary>
    public static int Run(CliIO io, CaseFolder folder, string? svgDir)
    {
        var net = ModelZoo.Create<double>(folder.Config);
        var modules = net.Root.NamedModules().ToDictionary(m => m.Path, m => m.Module, StringComparer.Ordinal);
        var outputs = new TensorSet<double>("module outputs");
        var gates = new Dictionary<string, List<DenseTensor<double>>>(StringComparer.Ordinal);
        var inputs = folder.ReadInputs<double>();
        var forwardOnly = new TensorSet<double>("inputs");
        forwardOnly.Set("x", inputs.Get("x"));
        folder.Module.Run(folder.Config, forwardOnly, folder.ReadParameters<double>(),
            new RunOptions
            {
                ModuleOutput = (n, v) => outputs.Set(n, v),
                Gate = (n, g) => (gates.TryGetValue(n.Split(':')[0], out var l) ? l : gates[n.Split(':')[0]] = []).Add(g),
            });
        var gateCalls = new Dictionary<string, int>(StringComparer.Ordinal);

        io.Out.WriteLine($"trace of {folder.Name} (network {folder.Module.Name}, float64, " +
                         $"{(folder.Config.Has("training") && folder.Config.GetBool("training") ? "training" : "eval")} mode): " +
                         "every module's output in call order");
        io.Out.WriteLine($"{"#",4}  {"module",-34} {"kind",-22} {"shape",-18} {"mean",12} {"std",12}  gate min / mean / max");
        var excitations = new List<(string Module, DenseTensor<double> Gate)>();
        var caMaps = new List<(string Module, DenseTensor<double> Ah, DenseTensor<double> Aw)>();
        int i = 0;
        foreach (var (name, value) in outputs)
        {
            string path = name.Split('#')[0];
            var module = modules[path];
            var (mean, std) = MeanStd(value.Data);
            string gate = "";
            if (gates.TryGetValue(path, out var list))
            {
                // The k-th call of a module used the k-th gate it reported (CA reports a_h and a_w: both count).
                gateCalls.TryGetValue(path, out int k);
                int per = module.Kind == "CoordAtt" ? 2 : 1;
                var mine = list.Skip(k * per).Take(per).SelectMany(t => t.Data).ToArray();
                gateCalls[path] = k + 1;
                if (mine.Length > 0)
                    gate = string.Create(Inv, $"  {mine.Min(),9:0.####} / {mine.Average(),6:0.####} / {mine.Max(),6:0.####}");
                if (module.Kind is "SEModule" or "SqueezeExcitation" && list.Count > k) excitations.Add((name, Flat(list[k])));
                if (module.Kind == "CoordAtt" && list.Count >= 2 * k + 2) caMaps.Add((name, Rows(list[2 * k]), Rows(list[2 * k + 1])));
            }
            io.Out.WriteLine(string.Create(Inv,
                $"{++i,4}  {name,-34} {module.Kind,-22} {value.ShapeString,-18} {mean,12:G5} {std,12:G5}{gate}"));
        }
        if (svgDir is not null)
        {
            if (excitations.Count == 0 && caMaps.Count == 0) io.Out.WriteLine($"no SE or CA module in '{folder.Module.Name}': no picture");
            if (excitations.Count > 0)
            {
                string file = Path.Combine(svgDir, "se_excitations.svg");
                AtomicFile.WriteText(file, Excitations(excitations, $"SE excitations across {folder.Module.Name} — {folder.Name}"));
                io.Out.WriteLine($"wrote {file}");
            }
            if (caMaps.Count > 0)
            {
                string file = Path.Combine(svgDir, "ca_attention_maps.svg");
                AtomicFile.WriteText(file, TraceSvg.MeanMaps(caMaps,
                    $"CA attention a_h(h)·a_w(w), mean over channels, sample 0, across {folder.Module.Name} — {folder.Name}"));
                io.Out.WriteLine($"wrote {file}");
            }
        }
        return ExitCodes.Ok;
    }

    private static DenseTensor<double> Flat(DenseTensor<double> g) => g.Reshape(g.Dim(0), g.Length / Math.Max(1, g.Dim(0)));

    /// <summary>A CA gate [N, C, H, 1] or [N, C, 1, W] as [N, C, L].</summary>
    private static DenseTensor<double> Rows(DenseTensor<double> g) => g.Reshape(g.Dim(0), g.Dim(1), g.Length / Math.Max(1, g.Dim(0) * g.Dim(1)));

    private static (double Mean, double Std) MeanStd(double[] d)
    {
        if (d.Length == 0) return (double.NaN, double.NaN);
        double mean = 0;
        foreach (double v in d) mean += v;
        mean /= d.Length;
        double ss = 0;
        foreach (double v in d) ss += (v - mean) * (v - mean);
        return (mean, Math.Sqrt(ss / d.Length));
    }

    /// <summary>One row per SE module: the excitation of each channel averaged over the batch, on [0, 1].</summary>
    public static string Excitations(IReadOnlyList<(string Module, DenseTensor<double> Gate)> rows, string title)
    {
        int maxC = rows.Max(r => r.Gate.Dim(1));
        double plotW = 800, rowH = 60, left = 150, top = 40, gap = 18;
        double width = left + plotW + 60, height = top + rows.Count * (rowH + gap) + 10; // room for the "C=..." labels
        var svg = new StringBuilder();
        svg.Append(Inv, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:0}\" height=\"{height:0}\" font-family=\"sans-serif\">");
        svg.Append(Inv, $"<text x=\"8\" y=\"20\" font-size=\"14\">{Escape(title)}</text>");
        for (int r = 0; r < rows.Count; r++)
        {
            var (name, gate) = rows[r];
            int n = gate.Dim(0), c = gate.Dim(1);
            double y0 = top + r * (rowH + gap), barW = plotW / c;
            svg.Append(Inv, $"<text x=\"{left - 6}\" y=\"{y0 + rowH / 2 + 4:0.#}\" font-size=\"11\" text-anchor=\"end\">{Escape(name)}</text>");
            svg.Append(Inv, $"<rect x=\"{left}\" y=\"{y0:0.#}\" width=\"{plotW}\" height=\"{rowH}\" fill=\"#f6f6f6\"/>");
            for (int ch = 0; ch < c; ch++)
            {
                double v = 0;
                for (int i = 0; i < n; i++) v += gate[i, ch];
                v = Math.Clamp(double.IsFinite(v / n) ? v / n : 0, 0, 1);
                double h = v * rowH;
                svg.Append(Inv, $"<rect x=\"{left + ch * barW:0.###}\" y=\"{y0 + rowH - h:0.##}\" width=\"{Math.Max(barW * 0.9, 0.2):0.###}\" height=\"{h:0.##}\" fill=\"#3b6ea5\"><title>{Escape(name)} channel {ch}: {v:0.####}</title></rect>");
            }
            svg.Append(Inv, $"<text x=\"{left + plotW + 4}\" y=\"{y0 + rowH:0.#}\" font-size=\"9\">C={c}</text>");
        }
        svg.Append("</svg>");
        return svg.ToString();
    }

    private static string Escape(string s) => s.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;");
}
