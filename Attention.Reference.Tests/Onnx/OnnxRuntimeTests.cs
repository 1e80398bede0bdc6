using Attention.Cli.Commands;
using Attention.Reference.IO;
using Attention.Reference.Onnx;
using Microsoft.ML.OnnxRuntime;

namespace Attention.Reference.Tests.Onnx;

/// <summary>
/// ONNX Runtime (CPU, float32) held against the float64 oracle on every node output of the PyTorch-exported networks,
/// with the tolerance <see cref="OnnxComparison"/> derives from the float32 rounding of each computation; and
/// <c>onnx compare</c> end to end, including a backend dump with one wrong node.
/// </summary>
public sealed class OnnxRuntimeTests(ITestOutputHelper log) : IDisposable
{
    private readonly string _temp = Directory.CreateTempSubdirectory("attention-ort-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    private static string Dir(string c) => Path.Combine(AppContext.BaseDirectory, "testdata", "onnx", "torch-1.13", c);

    [Theory]
    [InlineData("04_mobilenet_v3_large_eval", GraphOptimizationLevel.ORT_DISABLE_ALL)]
    [InlineData("06_mbv2_ca_eval", GraphOptimizationLevel.ORT_DISABLE_ALL)]
    [InlineData("08_efficientnet_eval", GraphOptimizationLevel.ORT_DISABLE_ALL)]
    [InlineData("09_mobilenet_v2_eval", GraphOptimizationLevel.ORT_DISABLE_ALL)]
    [InlineData("09_mobilenet_v2_eval", GraphOptimizationLevel.ORT_ENABLE_ALL)]
    public void OnnxRuntimeAgreesWithTheOracleOnEveryNode(string c, GraphOptimizationLevel level)
    {
        string path = Path.Combine(Dir(c), "model.onnx");
        var model = OnnxModel.Load(path);
        var rows = OrtCheck.Compare(path, Path.Combine(Dir(c), "test_data_set_0", "input_0.pb"), level);
        Assert.Equal(model.Graph.Node.SelectMany(n => n.Output).Count(o => o.Length > 0), rows.Count);
        var worst = rows.MaxBy(r => r.MaxAbs / r.Tolerance)!;
        var y = rows.Single(r => r.Output == "y");
        log.WriteLine($"{c} {level}: y relative {y.Relative:E2}; tightest node {worst.Node} {worst.OpType}: {worst.MaxAbs:E2} of {worst.Tolerance:E2}");
        Assert.True(rows.All(r => !r.Over), string.Join("\n", rows.Where(r => r.Over).Take(5)));
    }

    [Fact]
    public void CompareFindsTheFirstWrongNodeOfABackendDump()
    {
        const string c = "08_efficientnet_eval";
        string model = Path.Combine(Dir(c), "model.onnx"), input = Path.Combine(Dir(c), "test_data_set_0", "input_0.pb");
        var (code, stdout, err) = CliHarness.Run("onnx", "compare", model, "--input", input);
        Assert.True(code == ExitCodes.Ok, stdout + err);
        Assert.Contains("105 node outputs compared: all within tolerance", stdout);
        Assert.Contains("ONNX Runtime 1.31", stdout);
        // A backend dump: the oracle's own float32 run, with one node's output made slightly wrong (a float16-like
        // rounding of one SiLU gate: relative 1e-3).
        var m = OnnxModel.Load(model);
        var dump = OnnxRunner.Run(m, OnnxRunner.ReadInputs<float>(m, [input]), dump: true).Dump!;
        string victim = dump.Names.First(n => n.Contains("Sigmoid", StringComparison.Ordinal));
        var bad = new TensorSet<float>("backend");
        foreach (var (name, t) in dump)
            bad.Set(name, name == victim ? new DenseTensor<float>(t.Data.Select(v => v * 1.001f).ToArray(), t.ShapeArray()) : t);
        string actual = Path.Combine(_temp, "backend.safetensors");
        SafeTensors.Write(actual, bad);
        (code, stdout, err) = CliHarness.Run("onnx", "compare", model, "--input", input, "--actual", actual);
        Assert.True(code == ExitCodes.Mismatch, stdout + err);
        int index = m.Graph.Node.ToList().FindIndex(n => n.Output.Contains(victim));
        Assert.Contains($"first: node {index} (Sigmoid) '{victim}'", stdout);
    }

    /// <summary>
    /// A backend dump must cover the graph (issue 31): one that holds none of its node outputs (empty, or unrelated names)
    /// fails, naming the file; a partial one fails listing the missing outputs, or with --allow-missing passes and says
    /// how many were unchecked (unless it covers nothing).
    /// </summary>
    [Fact]
    public void CompareRefusesADumpThatDoesNotCoverTheGraph()
    {
        const string c = "08_efficientnet_eval";
        string model = Path.Combine(Dir(c), "model.onnx"), input = Path.Combine(Dir(c), "test_data_set_0", "input_0.pb");
        string empty = Path.Combine(_temp, "empty.safetensors"), unrelated = Path.Combine(_temp, "unrelated.safetensors");
        SafeTensors.Write(empty, new TensorSet<float>("none"));
        var other = new TensorSet<float>("other");
        other.Set("not_a_node", new DenseTensor<float>(2));
        SafeTensors.Write(unrelated, other);
        foreach (var dump in new[] { empty, unrelated })
            foreach (var extra in new[] { Array.Empty<string>(), ["--allow-missing"] })
            {
                var (code, stdout, err) = CliHarness.Run(["onnx", "compare", model, "--input", input, "--actual", dump, .. extra]);
                Assert.True(code == ExitCodes.Mismatch, $"{dump} {string.Join(' ', extra)}: exit {code}\n{stdout}{err}");
                Assert.Contains("holds none of the graph's", err);
            }
        var m = OnnxModel.Load(model);
        var full = OnnxRunner.Run(m, OnnxRunner.ReadInputs<float>(m, [input]), dump: true).Dump!;
        var part = new TensorSet<float>("part");
        foreach (var (name, t) in full.Take(10)) part.Set(name, t);
        string partial = Path.Combine(_temp, "partial.safetensors");
        SafeTensors.Write(partial, part);
        var (c1, o1, e1) = CliHarness.Run("onnx", "compare", model, "--input", input, "--actual", partial);
        Assert.True(c1 == ExitCodes.Mismatch, o1 + e1);
        Assert.Contains("missing", o1);
        var (c2, o2, e2) = CliHarness.Run("onnx", "compare", model, "--input", input, "--actual", partial, "--allow-missing");
        Assert.True(c2 == ExitCodes.Ok, o2 + e2);
        Assert.Contains($"unchecked: {full.Names.Count - 10} node outputs are not in the dump", o2);
        Assert.Equal(ExitCodes.BadInput, CliHarness.Run("onnx", "compare", model, "--input", input, "--allow-missing").Code);
    }
}
