using System.CommandLine;
using Attention.Reference.Cases;
using Attention.Reference.IO;

namespace Attention.Cli.Commands;

/// <summary><c>run CASE [--out FILE] [--dtype float64|float32]</c>.</summary>
public static class RunCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create(CliIO io)
    {
        var caseArg = new Argument<string>("case") { Description = "The case folder (case.json, inputs.safetensors, params.safetensors)." };
        var outOpt = new Option<string?>("--out") { Description = "Output file (default: CASE/actual.safetensors)." };
        var dtypeOpt = DTypeOption.Create();
        var cmd = new Command("run", "Compute y and, when inputs hold y.grad, x.grad and every <param>.grad; write them as safetensors.")
        {
            caseArg, outOpt, dtypeOpt,
        };
        cmd.SetAction(p => io.Guard(() =>
        {
            var folder = CaseFolder.Open(p.GetValue(caseArg)!);
            string output = p.GetValue(outOpt) ?? Path.Combine(folder.Path, "actual.safetensors");
            if (p.GetValue(dtypeOpt) == "float32")
                SafeTensors.Write(output, folder.Run<float>());
            else
                SafeTensors.Write(output, folder.Run<double>());
            io.Out.WriteLine($"wrote {output}");
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
        opt.AcceptOnlyFromAmong("float64", "float32");
        return opt;
    }
}
