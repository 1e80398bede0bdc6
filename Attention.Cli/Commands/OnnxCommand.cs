using System.CommandLine;
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
        return cmd;
    }

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
