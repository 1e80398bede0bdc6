using System.CommandLine;
using System.Globalization;
using Attention.Cli.Trace;
using Attention.Reference.Cases;
using Attention.Reference.Models;
using Attention.Reference.IO;
using Attention.Reference.Tensors;

namespace Attention.Cli.Commands;

/// <summary><c>trace CASE [--steps all|forward|backward] [--show N] [--svg DIR]</c>.</summary>
public static class TraceCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create(CliIO io)
    {
        var caseArg = new Argument<string>("case") { Description = "The case folder." };
        var stepsOpt = new Option<string>("--steps") { Description = "all (default), forward or backward.", DefaultValueFactory = _ => "all" };
        stepsOpt.AcceptOnlyFromAmong("all", "forward", "backward");
        var showOpt = new Option<int>("--show") { Description = "How many values of each intermediate to print (default 6).", DefaultValueFactory = _ => 6 };
        var svgOpt = new Option<string?>("--svg") { Description = "Also write SVG pictures of the attention maps into this folder." };
        var cmd = new Command("trace",
            "Run one case in float64 and print each named intermediate in the order of the derivation (docs/derivations), with its shape, a few values and min/max/mean.")
        {
            caseArg, stepsOpt, showOpt, svgOpt,
        };
        cmd.SetAction(p => io.Guard(() =>
        {
            int show = p.GetValue(showOpt);
            if (show < 0) throw new ArgumentException($"--show must be 0 or more, got {show}.");
            string? svgDir = p.GetValue(svgOpt);
            if (svgDir is not null)
            {
                if (File.Exists(svgDir)) throw new IOException($"--svg '{svgDir}' is a file, not a folder.");
                Directory.CreateDirectory(svgDir); // as pack --out does
            }
            var folder = CaseFolder.Open(p.GetValue(caseArg)!);
            if (folder.IsNetwork) return NetworkTrace.Run(io, folder, svgDir);
            var log = new TraceLog();
            folder.Run<double>(new RunOptions { Trace = log });
            string phase = p.GetValue(stepsOpt)!;
            var steps = log.Steps.Where(s => phase == "all" || s.Phase == phase).ToList();

            io.Out.WriteLine($"trace of {folder.Name} (module {folder.Module.Name}, float64); equations in docs/derivations/{DocFile(folder.Module.Name)}");
            io.Out.WriteLine($"{"#",3}  {"eq",-10} {"phase",-8} {"name",-14} {"shape",-16} {"min",13} {"max",13} {"mean",13}");
            int i = 0;
            foreach (var s in steps)
            {
                io.Out.WriteLine(Format(++i, s, show));
            }
            if (steps.Count == 0) io.Out.WriteLine("(this module records no intermediates for these steps)");

            if (svgDir is not null)
            {
                var pictures = TraceSvg.Render(folder.Module.Name, log.Steps, folder.Name).ToList();
                foreach (var (file, svg) in pictures)
                {
                    string path = Path.Combine(svgDir, file);
                    AtomicFile.WriteText(path, svg);
                    io.Out.WriteLine($"wrote {path}");
                }
                if (pictures.Count == 0) io.Out.WriteLine($"no picture is defined for module '{folder.Module.Name}'");
            }
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    /// <summary>The derivation file of a module.</summary>
    public static string DocFile(string module) => module switch
    {
        "conv2d" => "conv2d.md",
        "se" or "se_resnet_block" => "se.md",
        "ca" => "ca.md",
        "gct" => "gct.md",
        _ => "index.md",
    };

    private static string Format(int index, TraceStep s, int show)
    {
        var d = s.Value.Data;
        double min = d.Length == 0 ? double.NaN : d.Min(), max = d.Length == 0 ? double.NaN : d.Max();
        double mean = 0;
        foreach (double v in d) mean += v;
        mean = d.Length == 0 ? double.NaN : mean / d.Length;
        string line = string.Create(CultureInfo.InvariantCulture,
            $"{index,3}  {"(" + s.Equation + ")",-10} {s.Phase,-8} {s.Name,-14} {s.Value.ShapeString,-16} {min,13:G6} {max,13:G6} {mean,13:G6}");
        if (show > 0 && d.Length > 0)
            line += "\n" + new string(' ', 15) + "values: " + string.Join(", ", d.Take(show).Select(v => v.ToString("G8", CultureInfo.InvariantCulture))) + (d.Length > show ? ", …" : "");
        return line;
    }
}
