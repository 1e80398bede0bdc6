using Attention.Cli.Commands;
using Attention.Reference.IO;
using Attention.Reference.Onnx;

namespace Attention.Reference.Tests.Onnx;

/// <summary><c>onnx run</c> end to end: outputs, dump, inputs left alone, and bad input refused with exit 2.</summary>
public sealed class OnnxCliTests : IDisposable
{
    private readonly string _temp = Directory.CreateTempSubdirectory("attention-onnx-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    private string Case(string c) =>
        CliHarness.CopyFolder(Path.Combine(AppContext.BaseDirectory, "testdata", "onnx", "torch-1.13", c), _temp);

    private static string Input(string folder) => Path.Combine(AppContext.BaseDirectory, "testdata", "onnx", "torch-1.13",
        Path.GetFileName(folder), "test_data_set_0", "input_0.pb");

    [Fact]
    public void RunWritesOutputsAndDumpAndLeavesTheModelAlone()
    {
        string folder = Case("08_efficientnet_eval");
        var before = CliHarness.Hashes(folder);
        string output = Path.Combine(_temp, "y.safetensors"), dump = Path.Combine(_temp, "dump.safetensors");
        var (code, stdout, err) = CliHarness.Run("onnx", "run", Path.Combine(folder, "model.onnx"), "--input", Input(folder),
            "--out", output, "--dump", dump);
        Assert.True(code == ExitCodes.Ok, stdout + err);
        Assert.Equal(before, CliHarness.Hashes(folder));
        var y = SafeTensors.Read(output);
        Assert.Equal("y", Assert.Single(y).Name);
        Assert.Equal(StoredDType.F64, y[0].DType);
        var nodes = SafeTensors.Read(dump, out var metadata);
        Assert.Equal(105, nodes.Count);
        Assert.Equal(string.Join(",", nodes.Select(t => t.Name)), metadata[DumpComparer.OrderKey]);
        // The same through a .npy input and the float32 evaluation.
        string npy = Path.Combine(_temp, "x.npy");
        Npy.Write(npy, OnnxRunner.AsTensor(OnnxTensors.ToValue<double>(OnnxTensors.ReadProtoFile(Input(folder)), "x")));
        (code, stdout, err) = CliHarness.Run("onnx", "run", Path.Combine(folder, "model.onnx"), "--input", npy, "--out",
            Path.Combine(_temp, "y32.safetensors"), "--dtype", "float32");
        Assert.True(code == ExitCodes.Ok, stdout + err);
        var y32 = SafeTensors.Read(Path.Combine(_temp, "y32.safetensors"))[0];
        Assert.Equal(StoredDType.F32, y32.DType);
        double scale = y[0].Values.Max(Math.Abs);
        Assert.All(y32.Values.Zip(y[0].Values), p => Assert.True(Math.Abs(p.First - p.Second) <= 1e-4 * scale));
    }

    [Fact]
    public void BadModelsAndInputsExitTwoAndWriteNothing()
    {
        string folder = Case("09_mobilenet_v2_eval");
        string model = Path.Combine(folder, "model.onnx"), output = Path.Combine(_temp, "out.safetensors");
        var before = CliHarness.Hashes(folder);
        void Refused(string expect, params string[] args)
        {
            var (code, stdout, err) = CliHarness.Run(args);
            Assert.True(code == ExitCodes.BadInput, $"{string.Join(" ", args)}: exit {code}: {stdout}{err}");
            Assert.Contains(expect, err);
            Assert.False(File.Exists(output), "nothing may be written");
        }
        // The model itself as the output, a missing input, an input the model does not take.
        Refused("model.onnx", "onnx", "run", model, "--input", Input(folder), "--out", model);
        Refused("graph input 'x' was not given", "onnx", "run", model, "--out", output);
        Refused("input 'x' is given twice", "onnx", "run", model, "--input", Input(folder), Input(folder), "--out", output);
        // A graph input declaring a negative dimension (issue 31: it was taken as "unknown").
        var negProto = global::Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(model));
        negProto.Graph.Input[0].Type.TensorType.Shape.Dim[2].DimValue = -3;
        string negative = Path.Combine(_temp, "negative.onnx");
        File.WriteAllBytes(negative, Google.Protobuf.MessageExtensions.ToByteArray(negProto));
        Refused("graph input 'x' declares dimension 2 = -3", "onnx", "run", negative, "--input", Input(folder), "--out", output);
        // A truncated model, and a model with an operator this project does not evaluate.
        string truncated = Path.Combine(_temp, "truncated.onnx");
        File.WriteAllBytes(truncated, File.ReadAllBytes(model)[..5000]);
        Refused("truncated.onnx: not an ONNX model", "onnx", "run", truncated, "--input", Input(folder), "--out", output);
        string lrn = Path.Combine(_temp, "lrn.onnx");
        var proto = global::Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(model));
        proto.Graph.Node[3].OpType = "LRN";
        File.WriteAllBytes(lrn, Google.Protobuf.MessageExtensions.ToByteArray(proto));
        Refused("operator LRN is not supported", "onnx", "run", lrn, "--input", Input(folder), "--out", output);
        // A wrong input shape names the input, the declared and the given shape.
        string small = Path.Combine(_temp, "small.npy");
        Npy.Write(small, new Attention.Reference.Tensors.DenseTensor<double>(1, 3, 8, 8));
        Refused("graph input 'x' is declared [1, 3, 40, 40], given [1, 3, 8, 8]", "onnx", "run", model, "--input", small, "--out", output);
        Assert.Equal(before, CliHarness.Hashes(folder));
    }
}
