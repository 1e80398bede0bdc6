using System.CommandLine;
using Attention.Reference.Cases;
using Attention.Reference.Models;
using Attention.Reference.IO;
using Attention.Reference.Layers;
using Attention.Reference.Tensors;

namespace Attention.Cli.Commands;

/// <summary><c>run CASE [--out FILE] [--dump FILE] [--dtype float64|float32] [--kernels oracle|fast] [--threads N]</c>.</summary>
public static class RunCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create(CliIO io)
    {
        var caseArg = new Argument<string>("case") { Description = "The case folder (case.json, inputs.safetensors, params.safetensors or params.pth)." };
        var outOpt = new Option<string?>("--out") { Description = "Output file (default: CASE/actual.safetensors)." };
        var dumpOpt = new Option<string?>("--dump")
        {
            Description = "Network cases: write every module's output (float64) under its module path, in call order (__metadata__ \"order\").",
        };
        var dtypeOpt = DTypeOption.Create();
        var kernelsOpt = KernelsOption.Create();
        var threadsOpt = ThreadsOption.Create();
        var conventionsOpt = ConventionsOption.Create();
        var memoryOpt = MemoryOption.Create();
        var cmd = new Command("run", "Compute y and, when inputs hold y.grad, x.grad and every <param>.grad; write them as safetensors.")
        {
            caseArg, outOpt, dumpOpt, dtypeOpt, kernelsOpt, threadsOpt, conventionsOpt, memoryOpt,
        };
        cmd.SetAction(p => io.Guard(() =>
        {
            var folder = CaseFolder.Open(p.GetValue(caseArg)!);
            string output = p.GetValue(outOpt) ?? Path.Combine(folder.Path, "actual.safetensors");
            string? dumpPath = p.GetValue(dumpOpt);
            if (dumpPath is not null && !folder.IsNetwork)
                throw new ArgumentException($"--dump needs a network case; '{folder.Path}' is a '{folder.Module.Name}' case.");
            // Every file the run reads, and every known file of the case, is off limits as an output.
            var inputs = folder.KnownFiles.ToList();
            OutputFile.Check(output, inputs);
            if (dumpPath is not null)
            {
                OutputFile.Check(dumpPath, inputs, needsSafetensors: true);
                if (OutputFile.Resolve(dumpPath) == OutputFile.Resolve(output))
                    throw new ArgumentException($"--dump '{dumpPath}' and --out '{output}' are the same file.");
            }
            var dump = dumpPath is null ? null : new TensorSet<double>("module dump");
            var options = new RunOptions
            {
                Kernels = KernelsOption.Parse(p.GetValue(kernelsOpt)),
                Conventions = ConventionsOption.Parse(p.GetValue(conventionsOpt)),
                MaxMemoryBytes = MemoryOption.Parse(p.GetValue(memoryOpt)),
                ModuleOutput = dump is null ? null : (name, value) => dump.Set(name, value),
                Progress = message => io.Err.WriteLine(message),
            };
            ThreadsOption.Apply(p.GetValue(threadsOpt), () =>
            {
                if (p.GetValue(dtypeOpt) == "float32") OutputFile.Write(output, folder.Run<float>(options));
                else OutputFile.Write(output, folder.Run<double>(options));
                return 0;
            });
            io.Out.WriteLine($"wrote {output}");
            if (dump is not null)
            {
                OutputFile.Write(dumpPath!, dump, new Dictionary<string, string> { [DumpComparer.OrderKey] = string.Join(",", dump.Names) });
                io.Out.WriteLine($"wrote {dumpPath} ({dump.Count} module outputs)");
            }
            return ExitCodes.Ok;
        }));
        return cmd;
    }
}

/// <summary>The shared --dtype option.</summary>
public static class DTypeOption
{
    /// <summary>Creates --dtype float64|float32 (default float64).</summary>
    public static Option<string> Create()
    {
        var opt = new Option<string>("--dtype")
        {
            Description = "float64 (the oracle, default) or float32 (the fast path).",
            DefaultValueFactory = _ => "float64",
        };
        opt.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<string>() is { } v && v is not ("float64" or "float32"))
                r.AddError($"--dtype must be float64 or float32, got '{v}'.");
        });
        return opt;
    }
}

/// <summary>The shared --kernels option.</summary>
public static class KernelsOption
{
    /// <summary>Creates --kernels oracle|fast (default: oracle for float64, fast for float32).</summary>
    public static Option<string?> Create()
    {
        var opt = new Option<string?>("--kernels")
        {
            Description = "oracle (documented summation orders) or fast (the fast twins where a module has one). " +
                          "Default: oracle for float64, fast for float32.",
        };
        opt.AcceptOnlyFromAmong("oracle", "fast");
        return opt;
    }

    /// <summary>The option's value as a <see cref="KernelPath"/>, or null for the default.</summary>
    public static KernelPath? Parse(string? value) => value switch
    {
        "oracle" => KernelPath.Oracle,
        "fast" => KernelPath.Fast,
        _ => null,
    };
}

/// <summary>The shared --grad-conventions option.</summary>
public static class ConventionsOption
{
    /// <summary>Creates --grad-conventions exact|libtorch (default exact).</summary>
    public static Option<string> Create()
    {
        var opt = new Option<string>("--grad-conventions")
        {
            Description = "exact (default) or libtorch: use libtorch's float32-rounded 1/6 in nn.Hardsigmoid's backward, " +
                          "to reproduce PyTorch's gradients (MobileNetV3).",
            DefaultValueFactory = _ => "exact",
        };
        opt.AcceptOnlyFromAmong("exact", "libtorch");
        return opt;
    }

    /// <summary>The option's value.</summary>
    public static GradConventions Parse(string? value) => value == "libtorch" ? GradConventions.Libtorch : GradConventions.Exact;
}

/// <summary>The shared --max-memory option.</summary>
public static class MemoryOption
{
    /// <summary>Creates --max-memory SIZE (bytes, or with K, M, G).</summary>
    public static Option<string?> Create() => new("--max-memory")
    {
        Description = "The most memory a run may plan to use, e.g. 8G or 512M (default: three quarters of the available memory). " +
                      "Checked before anything is allocated.",
    };

    /// <summary>The size in bytes, or null for the default.</summary>
    public static long? Parse(string? text)
    {
        if (text is null) return null;
        string t = text.Trim().ToUpperInvariant();
        long unit = t.EndsWith('G') ? 1L << 30 : t.EndsWith('M') ? 1L << 20 : t.EndsWith('K') ? 1L << 10 : 1;
        if (unit > 1) t = t[..^1];
        if (!double.TryParse(t, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double v)
            || !(v > 0) || v * unit > long.MaxValue)
            throw new ArgumentException($"--max-memory expects a positive size such as 8G, 512M or 1000000, got '{text}'.");
        return (long)(v * unit);
    }
}

/// <summary>The shared --threads option.</summary>
public static class ThreadsOption
{
    /// <summary>Creates --threads N (default: all cores). Results are bitwise identical for any N.</summary>
    public static Option<int?> Create()
    {
        var option = new Option<int?>("--threads") { Description = "Threads for the parallel loops (default: all cores); results are bitwise identical for any N." };
        // Checked once when the command line is parsed (verify printed it once per case before).
        option.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int?>() is < 1 and var v) r.AddError($"--threads must be at least 1, got {v}.");
        });
        return option;
    }

    /// <summary>Runs <paramref name="body"/> with the thread count, when one is given.</summary>
    public static T Apply<T>(int? threads, Func<T> body)
    {
        if (threads is null) return body();
        if (threads < 1) throw new ArgumentException($"--threads must be at least 1, got {threads}.");
        return Compute.WithThreads(threads.Value, body);
    }
}
