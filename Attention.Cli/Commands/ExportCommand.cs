using System.CommandLine;
using System.Globalization;
using Attention.Reference.Cases;
using Attention.Reference.Models;
using Attention.Reference.Onnx;

namespace Attention.Cli.Commands;

/// <summary><c>export CASE --onnx DIR</c>: the case's module, block or network as ONNX with backend-test data.</summary>
public static class ExportCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create(CliIO io)
    {
        var caseArg = new Argument<string>("case") { Description = "An eval-mode case folder (case.json, inputs, params)." };
        var onnxOpt = new Option<string>("--onnx")
        {
            Description = "Output folder: DIR/float64 and DIR/float32, each model.onnx + test_data_set_0/{input_0,output_0}.pb.",
            Required = true,
        };
        var cmd = new Command("export", "Write a case as ONNX models (opset 17, float64 and float32) with ONNX test data from the float64 oracle.")
        {
            caseArg, onnxOpt,
        };
        cmd.SetAction(p => io.Guard(() =>
        {
            string target = p.GetValue(onnxOpt)!;
            if (string.IsNullOrWhiteSpace(target)) throw new ArgumentException("--onnx needs a folder to write into; it was given an empty name.");
            var folder = CaseFolder.Open(p.GetValue(caseArg)!);
            var r = OnnxExport.ExportCase(folder, target);
            io.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"wrote {r.Float64} and {r.Float32} ({r.Nodes} nodes); onnx run of the float64 model: {(r.Bitwise ? "bitwise equal to the oracle" : $"max |Δ| = {r.MaxAbsDifference:E2} from the oracle")}"));
            return ExitCodes.Ok;
        }));
        return cmd;
    }
}
