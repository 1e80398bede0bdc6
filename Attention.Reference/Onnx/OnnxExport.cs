using Attention.Reference.Cases;
using Attention.Reference.IO;
using Attention.Reference.Layers;
using Attention.Reference.Models;
using Google.Protobuf;
using Onnx;

namespace Attention.Reference.Onnx;

/// <summary>What <see cref="OnnxExport.ExportCase"/> wrote.</summary>
/// <param name="Float64">The float64 model folder (model.onnx, test_data_set_0).</param>
/// <param name="Float32">The float32 model folder.</param>
/// <param name="Nodes">Nodes in the graph.</param>
/// <param name="Bitwise">Whether <c>onnx run</c> of the float64 model reproduced the oracle bit for bit.</param>
/// <param name="MaxAbsDifference">max |onnx run − oracle| of the float64 model.</param>
public sealed record OnnxExportResult(string Float64, string Float32, int Nodes, bool Bitwise, double MaxAbsDifference);

/// <summary>
/// Writes a case's module, block or network as ONNX (opset 17), in the backend-test layout
/// (<c>model.onnx</c>, <c>test_data_set_0/input_0.pb</c>, <c>output_0.pb</c>): a float64 model whose
/// <c>onnx run</c> reproduces the oracle bitwise, and a float32 copy (weights rounded once) whose test data are the
/// float64 oracle's input and output cast to float32. Every layer writes its own nodes (<c>Layer.Export</c>).
/// </summary>
public static class OnnxExport
{
    /// <summary>The graph of a layer tree for input shape <paramref name="inputShape"/> (input "x", output "y").</summary>
    public static ModelProto Export<T>(Layer<T> root, int[] inputShape, string doc) where T : IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(root);
        var b = new OnnxGraphBuilder<T>();
        string x = b.Input("x", inputShape);
        string y = root.Export(b, x);
        if (y == x) throw new NotSupportedException($"{root.Kind} is the identity: there is nothing to export");
        return b.Finish(y, "y", doc);
    }

    /// <summary>Exports an eval-mode case folder into <paramref name="dir"/>/float64 and <paramref name="dir"/>/float32.</summary>
    public static OnnxExportResult ExportCase(CaseFolder folder, string dir)
    {
        ArgumentNullException.ThrowIfNull(folder);
        if (folder.Config.Has("training") && folder.Config.GetBool("training"))
            throw new NotSupportedException($"{folder.Path}: a training-mode case cannot be exported (ONNX graphs here are inference graphs: BatchNorm uses its running statistics).");
        // Links resolved: a folder reached through a link into the case is still inside it.
        string full = AtomicFile.Resolve(dir), caseDir = AtomicFile.Resolve(folder.Path);
        if (full == caseDir || full.StartsWith(caseDir + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            throw new ArgumentException($"--onnx '{dir}' is inside the case folder {folder.Path}, which is never written to.");
        // Every folder export writes into is a real folder (no link sends its files elsewhere), checked before anything is written.
        foreach (string sub in new[] { "", "float64", "float32", Path.Combine("float64", "test_data_set_0"), Path.Combine("float32", "test_data_set_0") })
            AtomicFile.CheckFolder(Path.Combine(dir, sub));
        var net = folder.Module.Create<double>(folder.Config);
        net.LoadStateDict(folder.ReadParameters<double>());
        var x = folder.ReadInputs<double>().Get("x");
        ShapeUtil.RequireRank(x, "x", 4, "N, C, H, W");
        var y = net.Run(x, null, training: false, KernelPath.Oracle).Tensors.Get("y");
        string doc = $"attention-ref export of {folder.Name} ({folder.Config.Module}); float64; y = the oracle's output";
        var model64 = Export(net.Root, x.ShapeArray(), doc);
        var model32 = OnnxRewrite.ToFloat32(model64);
        model32.DocString = doc.Replace("float64", "float32 (weights rounded once from float64)", StringComparison.Ordinal);
        // Everything is computed and checked before anything is written.
        var check = OnnxModel.Parse(model64.ToByteArray(), "exported model.onnx");
        var got = OnnxRunner.Run(check, new Dictionary<string, OnnxValue<double>> { ["x"] = OnnxValue<double>.FromTensor(OnnxElementType.Double, x) }, dump: false)
            .Outputs.Get("y");
        bool bitwise = got.Data.Length == y.Data.Length && got.Data.Zip(y.Data).All(p => BitConverter.DoubleToInt64Bits(p.First) == BitConverter.DoubleToInt64Bits(p.Second));
        double maxAbs = got.Data.Zip(y.Data).Select(p => Math.Abs(p.First - p.Second)).DefaultIfEmpty(0).Max();
        string f64 = Path.Combine(dir, "float64"), f32 = Path.Combine(dir, "float32");
        Write(f64, model64, OnnxTensors.ToProto("x", x, OnnxElementType.Double), OnnxTensors.ToProto("y", y, OnnxElementType.Double));
        Write(f32, model32, OnnxTensors.ToProto("x", x, OnnxElementType.Float), OnnxTensors.ToProto("y", y, OnnxElementType.Float));
        return new OnnxExportResult(f64, f32, model64.Graph.Node.Count, bitwise, maxAbs);
    }

    private static void Write(string dir, ModelProto model, TensorProto input, TensorProto output)
    {
        string data = Path.Combine(dir, "test_data_set_0");
        Directory.CreateDirectory(data);
        AtomicFile.Write(Path.Combine(dir, "model.onnx"), s => model.WriteTo(s));
        OnnxTensors.WriteProtoFile(Path.Combine(data, "input_0.pb"), input);
        OnnxTensors.WriteProtoFile(Path.Combine(data, "output_0.pb"), output);
    }
}
