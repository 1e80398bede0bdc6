using System.CommandLine;
using System.Globalization;
using Attention.Cli.Bench;
using Attention.Reference.Tensors;

namespace Attention.Cli.Commands;

/// <summary><c>bench SUITE [--json] [--threads N] [--dtype ...] [--min-seconds S]</c>.</summary>
public static class BenchCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create(CliIO io)
    {
        var suiteArg = new Argument<string>("suite")
        {
            Description = "Which suite: " + string.Join(", ", BenchSuites.All.Select(s => $"{s.Name} ({s.Description})")) +
                          ", or net MODEL (a whole network: forward and forward+backward).",
        };
        var modelArg = new Argument<string?>("model") { Description = "For 'net': the model (seresnet50, resnet50, ...).", Arity = ArgumentArity.ZeroOrOne };
        var sizeOpt = new Option<int>("--size") { Description = "For 'net': image size (default 224).", DefaultValueFactory = _ => 224 };
        var batchOpt = new Option<int>("--batch") { Description = "For 'net': batch size (default 1).", DefaultValueFactory = _ => 1 };
        var jsonOpt = new Option<bool>("--json") { Description = "One JSON object per line." };
        var threadsOpt = new Option<int>("--threads") { Description = "Threads (default: all cores).", DefaultValueFactory = _ => Environment.ProcessorCount };
        var dtypeOpt = new Option<string>("--dtype") { Description = "float32, float64 or both (default).", DefaultValueFactory = _ => "both" };
        dtypeOpt.AcceptOnlyFromAmong("float32", "float64", "both");
        var secondsOpt = new Option<double>("--min-seconds") { Description = "Minimum time per measurement.", DefaultValueFactory = _ => 1.0 };
        var directOpt = new Option<bool>("--no-winograd")
        {
            Description = "For 'net': the float32 plan runs 3x3 stride-1 convolutions with the direct kernel instead of Winograd F(2x2,3x3).",
        };
        var explainOpt = new Option<bool>("--explain")
        {
            Description = "For 'net': print, instead of timing, the vector path and which algorithm each convolution of the float32 plan's forward and the eager backward runs.",
        };
        var profileOpt = new Option<bool>("--profile")
        {
            Description = "For 'net': print, instead of the table, where the float32 plan's forward spends its time: each kind of step (a convolution shape, a layer, a residual sum), its calls and milliseconds.",
        };
        var cmd = new Command("bench", "Time the fast kernels and print ms and GFLOP/s.")
        {
            suiteArg, modelArg, jsonOpt, threadsOpt, dtypeOpt, secondsOpt, sizeOpt, batchOpt, directOpt, explainOpt, profileOpt,
        };
        cmd.SetAction(p => io.Guard(() =>
        {
            string name = p.GetValue(suiteArg)!;
            if (name == "net") return RunNet(io, p.GetValue(modelArg), p.GetValue(threadsOpt), p.GetValue(dtypeOpt)!, p.GetValue(sizeOpt),
                p.GetValue(batchOpt), p.GetValue(secondsOpt), p.GetValue(jsonOpt), !p.GetValue(directOpt), p.GetValue(explainOpt),
                p.GetValue(profileOpt));
            if (p.GetValue(explainOpt)) throw new ArgumentException("--explain is for 'bench net MODEL'.");
            if (p.GetValue(profileOpt)) throw new ArgumentException("--profile is for 'bench net MODEL'.");
            var suite = BenchSuites.All.FirstOrDefault(s => s.Name == name)
                ?? throw new ArgumentException($"unknown bench suite '{name}'; known: {string.Join(", ", BenchSuites.All.Select(s => s.Name))}.");
            int threads = p.GetValue(threadsOpt);
            if (threads < 1) throw new ArgumentException($"--threads must be at least 1, got {threads}.");
            double seconds = p.GetValue(secondsOpt);
            if (!(seconds > 0)) throw new ArgumentException($"--min-seconds must be positive, got {seconds}.");
            string dtype = p.GetValue(dtypeOpt)!;
            var settings = new BenchSettings(threads, seconds, dtype == "both" ? ["float32", "float64"] : [dtype]);
            bool json = p.GetValue(jsonOpt);
            Compute.WithThreads(threads, () =>
            {
                if (!json) io.Out.WriteLine($"{"layer",-26} {"dtype",-8} {"pass",-17} {"ms",10} {"GFLOP/s",9} threads {"GB/s",7} {"min_ms",9}");
                foreach (var r in suite.Run(settings))
                {
                    io.Out.WriteLine(json ? r.ToJson() : string.Create(CultureInfo.InvariantCulture,
                        $"{r.Layer,-26} {r.DType,-8} {r.Pass,-17} {r.Ms,10:0.000} {(r.GFlops is { } g ? g.ToString("0.0", CultureInfo.InvariantCulture) : "-"),9} {r.Threads,7} {(r.GBps is { } b ? b.ToString("0.0", CultureInfo.InvariantCulture) : ""),7} {(r.MinMs is { } m ? m.ToString("0.000", CultureInfo.InvariantCulture) : ""),9}"));
                    io.Out.Flush();
                }
                return 0;
            });
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static int RunNet(CliIO io, string? model, int threads, string dtype, int size, int batch, double seconds, bool json,
        bool winograd, bool explain, bool profile)
    {
        if (model is null)
            throw new ArgumentException($"bench net needs a model: {string.Join(", ", Attention.Reference.Models.ModelZoo.Networks.Select(m => m.Name))}.");
        Attention.Reference.Models.ModelZoo.GetNetwork(model);
        if (threads < 1) throw new ArgumentException($"--threads must be at least 1, got {threads}.");
        if (size < 32 || size > 4096) throw new ArgumentException($"--size must be between 32 and 4096, got {size}.");
        if (batch < 1 || batch > 1024) throw new ArgumentException($"--batch must be between 1 and 1024, got {batch}.");
        if (!(seconds > 0)) throw new ArgumentException($"--min-seconds must be positive, got {seconds}.");
        string[] dtypes = dtype == "both" ? ["float32", "float64"] : [dtype];
        return Compute.WithThreads(threads, () =>
        {
            if (explain)
            {
                foreach (string line in NetBench.Explain(model, size, batch, winograd)) io.Out.WriteLine(line);
                return ExitCodes.Ok;
            }
            if (profile)
            {
                foreach (string line in NetBench.Profile(model, size, batch, winograd, seconds)) io.Out.WriteLine(line);
                return ExitCodes.Ok;
            }
            if (!json) io.Out.WriteLine(NetBench.Header);
            foreach (var r in NetBench.Run(model, dtypes, size, batch, threads, seconds, winograd))
            {
                io.Out.WriteLine(json ? r.ToJson() : r.ToRow());
                io.Out.Flush();
            }
            return ExitCodes.Ok;
        });
    }
}
