using System.CommandLine;
using System.Globalization;
using Attention.Cli.Onnx;
using Attention.Reference.IO;
using Attention.Reference.Onnx;
using Attention.Reference.Tensors;

namespace Attention.Cli.Commands;

/// <summary>
/// <c>onnx run MODEL --input FILE... [--out FILE] [--dump FILE] [--dtype float64|float32]</c>: an ONNX model through
/// the oracle (every graph output under its ONNX name; with --dump every node output, in topological order).
/// </summary>
public static class OnnxCommand
{
    /// <summary>Builds the command group.</summary>
    public static Command Create(CliIO io)
    {
        var cmd = new Command("onnx", "Evaluate ONNX models exactly (float64) and compare other backends against them.");
        cmd.Subcommands.Add(RunCmd(io));
        cmd.Subcommands.Add(CompareCmd(io));
        return cmd;
    }

    private static Command CompareCmd(CliIO io)
    {
        var modelArg = new Argument<string>("model") { Description = "The .onnx model." };
        var inputOpt = InputOption();
        var actualOpt = new Option<string?>("--actual")
        {
            Description = "Another backend's dump (.safetensors, tensors under their ONNX names) to compare instead of running ONNX Runtime.",
        };
        var levelOpt = new Option<string>("--ort-optimization")
        {
            Description = "ONNX Runtime's graph optimisation level: disable (default: every node output exists), basic, extended, all.",
            DefaultValueFactory = _ => "disable",
        };
        var allOpt = new Option<bool>("--all") { Description = "Print every node output (default: the graph outputs, the worst five and every one over tolerance, up to 20)." };
        var jsonOpt = new Option<bool>("--json") { Description = "One JSON object per node output." };
        var allowMissingOpt = new Option<bool>("--allow-missing")
        {
            Description = "With --actual: node outputs the dump lacks are listed as unchecked instead of failing (a dump that holds none still fails).",
        };
        var threadsOpt = ThreadsOption.Create();
        var cmd = new Command("compare",
            "Compare ONNX Runtime (float32) or another backend's dump with the float64 oracle, node by node; exit 1 when a node is over tolerance.")
        {
            modelArg, inputOpt, actualOpt, levelOpt, allOpt, jsonOpt, allowMissingOpt, threadsOpt,
        };
        cmd.SetAction(p => io.Guard(() =>
        {
            string modelPath = p.GetValue(modelArg)!;
            bool allowMissing = p.GetValue(allowMissingOpt);
            if (allowMissing && p.GetValue(actualOpt) is null) throw new ArgumentException("--allow-missing needs --actual.");
            var inputs = p.GetValue(inputOpt) ?? [];
            var model = OnnxModel.Load(modelPath);
            string? actualPath = p.GetValue(actualOpt);
            var level = OrtRunner.Level(p.GetValue(levelOpt)!);
            int threads = p.GetValue(threadsOpt) ?? Compute.MaxThreads;
            var (oracle, oracle32) = ThreadsOption.Apply(p.GetValue(threadsOpt), () =>
            {
                var o = OnnxRunner.Run(model, OnnxRunner.ReadInputs<double>(model, inputs), dump: true).Dump!;
                var o32 = OnnxRunner.Run(model, OnnxRunner.ReadInputs<float>(model, inputs), dump: true).Dump!;
                return (o, o32);
            });
            Dictionary<string, DenseTensor<double>> actual;
            string who;
            if (actualPath is not null)
            {
                actual = SafeTensors.Read(actualPath).ToDictionary(t => t.Name, t => t.ToTensor<double>(), StringComparer.Ordinal);
                who = $"{actualPath} ({actual.Count} tensors)";
            }
            else
            {
                var proto = global::Onnx.ModelProto.Parser.ParseFrom(Attention.Reference.IO.InputFile.ReadAllBytes(modelPath, int.MaxValue, "ONNX model"));
                actual = OrtRunner.Run(proto, OnnxRunner.ReadInputs<double>(model, inputs), level, threads);
                who = $"ONNX Runtime {OrtRunner.Version}, CPU provider, float32, graph optimisation {level}, {threads} threads";
            }
            // A backend's dump must hold every node output unless --allow-missing; ONNX Runtime without graph optimisation
            // exposes every one (with optimisation it fuses some away).
            bool requireAll = actualPath is null ? level == Microsoft.ML.OnnxRuntime.GraphOptimizationLevel.ORT_DISABLE_ALL : !allowMissing;
            var rows = OnnxComparison.Compare(model, oracle, oracle32, name => actual.GetValueOrDefault(name), requireAll);
            Report(io, model, who, rows, p.GetValue(allOpt), p.GetValue(jsonOpt));
            int compared = rows.Count(r => r.Problem != "missing");
            if (actualPath is not null)
            {
                var missing = oracle.Names.Where(n => !actual.ContainsKey(n)).ToList();
                var unknown = actual.Keys.Where(n => oracle.TryGet(n) is null).ToList();
                if (allowMissing && missing.Count > 0)
                    io.Out.WriteLine($"unchecked: {missing.Count} node outputs are not in the dump: {Few(missing)}");
                if (unknown.Count > 0)
                    io.Out.WriteLine($"ignored: {unknown.Count} tensors of the dump are no node output of the graph: {Few(unknown)}");
                if (compared == 0)
                {
                    io.Err.WriteLine($"attention-ref: {actualPath} holds none of the graph's {oracle.Names.Count} node outputs: nothing was compared.");
                    return ExitCodes.Mismatch;
                }
            }
            return rows.Any(r => r.Over) ? ExitCodes.Mismatch : ExitCodes.Ok;
        }));
        return cmd;
    }

    private static void Report(CliIO io, OnnxModel model, string who, List<OnnxNodeError> rows, bool all, bool json)
    {
        var outputs = new HashSet<string>(model.Outputs.Select(o => o.Name), StringComparer.Ordinal);
        if (json)
        {
            foreach (var r in rows)
                io.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{{\"node\": {r.Node}, \"op\": \"{r.OpType}\", \"output\": {JsonText.Quote(r.Output)}, \"max_abs\": {Num(r.MaxAbs)}, \"relative\": {Num(r.Relative)}, \"tolerance\": {Num(r.Tolerance)}, \"over\": {(r.Over ? "true" : "false")}, \"problem\": {(r.Problem is null ? "null" : JsonText.Quote(r.Problem))}}}"));
            return;
        }
        io.Out.WriteLine($"oracle: attention-ref float64 of {model.Source} (opset {model.Opset}, {model.Graph.Node.Count} nodes)");
        io.Out.WriteLine($"actual: {who}");
        io.Out.WriteLine($"tolerance per output: {OnnxComparison.Factor} x the oracle's own float32 deviation + {OnnxComparison.Ulps} float32 units of max|oracle|");
        var worst = rows.Where(r => r.Problem is null).OrderByDescending(r => r.Relative).Take(5).ToHashSet();
        var over = rows.Where(r => r.Over).Take(20).ToHashSet();
        io.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{"node",5} {"op",-18} {"output",-34} {"max|Δ|",10} {"relative",10} {"tolerance",10}"));
        foreach (var r in rows)
        {
            if (!all && !outputs.Contains(r.Output) && !worst.Contains(r) && !over.Contains(r)) continue;
            string name = r.Output.Length > 34 ? "…" + r.Output[^33..] : r.Output;
            string tail = r.Problem ?? (r.Over ? "OVER" : outputs.Contains(r.Output) ? "(graph output)" : "");
            io.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{r.Node,5} {r.OpType,-18} {name,-34} {r.MaxAbs,10:0.00E+00} {r.Relative,10:0.00E+00} {r.Tolerance,10:0.00E+00} {tail}"));
        }
        var first = rows.FirstOrDefault(r => r.Over);
        io.Out.WriteLine(first is null
            ? $"{rows.Count} node outputs compared: all within tolerance"
            : string.Create(CultureInfo.InvariantCulture,
                $"{rows.Count(r => r.Over)} of {rows.Count} node outputs over tolerance; first: node {first.Node} ({first.OpType}) '{first.Output}': {first.Problem ?? $"max |Δ| = {first.MaxAbs:0.00E+00}, tolerance {first.Tolerance:0.00E+00}"}"));
    }

    private static string Few(List<string> names) =>
        string.Join(", ", names.Take(5).Select(n => $"'{n}'")) + (names.Count > 5 ? $", … ({names.Count - 5} more)" : "");

    private static string Num(double v) => double.IsFinite(v) ? v.ToString("R", CultureInfo.InvariantCulture) : "null";

    /// <summary>--input, repeatable.</summary>
    internal static Option<string[]> InputOption() => new("--input")
    {
        Description = "Input file(s): .npy, .safetensors (tensors by graph input name) or .pb (ONNX TensorProto). Unnamed tensors fill the graph inputs in order.",
        AllowMultipleArgumentsPerToken = true,
    };

    private static Command RunCmd(CliIO io)
    {
        var modelArg = new Argument<string>("model") { Description = "The .onnx model." };
        var inputOpt = InputOption();
        var outOpt = new Option<string?>("--out") { Description = "Graph outputs under their ONNX names (.safetensors; default: MODEL without .onnx + .out.safetensors)." };
        var dumpOpt = new Option<string?>("--dump") { Description = "Every node output under its ONNX tensor name, topological order (__metadata__ \"order\")." };
        var dtypeOpt = DTypeOption.Create();
        var threadsOpt = ThreadsOption.Create();
        var cmd = new Command("run", "Run an ONNX model through the oracle's layers and write its outputs (and, with --dump, every node output).")
        {
            modelArg, inputOpt, outOpt, dumpOpt, dtypeOpt, threadsOpt,
        };
        cmd.SetAction(p => io.Guard(() =>
        {
            string modelPath = p.GetValue(modelArg)!;
            var inputs = p.GetValue(inputOpt) ?? [];
            string output = p.GetValue(outOpt) ?? Path.ChangeExtension(modelPath, null) + ".out.safetensors";
            string? dumpPath = p.GetValue(dumpOpt);
            var readOnly = inputs.Append(modelPath).ToList();
            OutputFile.Check(output, readOnly, needsSafetensors: true);
            if (dumpPath is not null)
            {
                OutputFile.Check(dumpPath, readOnly, needsSafetensors: true);
                if (OutputFile.Resolve(dumpPath) == OutputFile.Resolve(output))
                    throw new ArgumentException($"--dump '{dumpPath}' and --out '{output}' are the same file.");
            }
            var model = OnnxModel.Load(modelPath);
            ThreadsOption.Apply(p.GetValue(threadsOpt), () =>
            {
                if (p.GetValue(dtypeOpt) == "float32") Write(io, model, inputs, output, dumpPath, 0f);
                else Write(io, model, inputs, output, dumpPath, 0.0);
                return 0;
            });
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static void Write<T>(CliIO io, OnnxModel model, string[] inputs, string output, string? dumpPath, T _)
        where T : System.Numerics.IFloatingPointIeee754<T>
    {
        var values = OnnxRunner.ReadInputs<T>(model, inputs);
        var result = OnnxRunner.Run(model, values, dumpPath is not null);
        // Everything is computed before anything is written.
        OutputFile.Write(output, result.Outputs);
        io.Out.WriteLine($"wrote {output} ({string.Join(", ", result.Outputs.Names.Select(n => $"{n} {result.Outputs.Get(n).ShapeString}"))})");
        if (dumpPath is not null)
        {
            var dump = result.Dump!;
            OutputFile.Write(dumpPath, dump, new Dictionary<string, string> { [DumpComparer.OrderKey] = string.Join(",", dump.Names) });
            io.Out.WriteLine($"wrote {dumpPath} ({dump.Count} node outputs)");
        }
    }
}
