using Attention.Cli.Commands;
using Attention.Reference.Cases;
using Attention.Reference.Models;
using Attention.Reference.Onnx;
using Microsoft.ML.OnnxRuntime;

namespace Attention.Reference.Tests.Onnx;

/// <summary>
/// <c>export</c> on every eval-mode public case (modules, networks): the float64 model under <c>onnx run</c> equals
/// the oracle bit for bit, its test data are the oracle's, and ONNX Runtime runs the float32 model within the
/// tolerance derived from the float32 rounding of each node (<see cref="OnnxComparison"/>).
/// </summary>
public sealed class OnnxExportTests(ITestOutputHelper log) : IDisposable
{
    private readonly string _temp = Directory.CreateTempSubdirectory("attention-export-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    private static string Data => Path.Combine(AppContext.BaseDirectory, "testdata");

    public static TheoryData<string> EvalCases()
    {
        var data = new TheoryData<string>();
        foreach (var pack in new[] { "libtorch-2.10", "pytorch-1.13-networks" })
            foreach (var dir in Directory.GetDirectories(Path.Combine(Data, pack)).Order(StringComparer.Ordinal))
            {
                var folder = CaseFolder.Open(dir);
                if (!(folder.Config.Has("training") && folder.Config.GetBool("training"))) data.Add(Path.Combine(pack, Path.GetFileName(dir)));
            }
        return data;
    }

    [Theory]
    [MemberData(nameof(EvalCases))]
    public void ExportReproducesTheOracleAndOnnxRuntimeStaysWithinFloat32Rounding(string name)
    {
        var folder = CaseFolder.Open(Path.Combine(Data, name));
        var r = OnnxExport.ExportCase(folder, Path.Combine(_temp, "out"));
        Assert.True(r.Bitwise, $"{name}: onnx run differs from the oracle by {r.MaxAbsDifference:E2}");
        // The written test data are the oracle's own y (float64), and the written model reproduces it from the written input.
        var model = OnnxModel.Load(Path.Combine(r.Float64, "model.onnx"));
        var input = Path.Combine(r.Float64, "test_data_set_0", "input_0.pb");
        var y = OnnxRunner.Run(model, OnnxRunner.ReadInputs<double>(model, [input]), dump: false).Outputs.Get("y");
        var expected = OnnxTensors.ToValue<double>(OnnxTensors.ReadProtoFile(Path.Combine(r.Float64, "test_data_set_0", "output_0.pb")), "y");
        Assert.Equal(expected.Reals!, y.Data);
        Assert.Equal(folder.Run<double>().Get("y").Data, y.Data);
        // ONNX Runtime on the float32 model and its float32 input, every node against the float64 oracle of that model.
        var rows = OrtCheck.Compare(Path.Combine(r.Float32, "model.onnx"), Path.Combine(r.Float32, "test_data_set_0", "input_0.pb"));
        var yRow = rows.Single(row => row.Output == "y");
        log.WriteLine($"{name}: {r.Nodes} nodes; ORT y relative {yRow.Relative:E2} (tolerance {yRow.Tolerance / Math.Max(yRow.Scale, 1e-300):E2} relative)");
        Assert.True(rows.All(row => !row.Over), string.Join("\n", rows.Where(row => row.Over).Take(5)));
    }

    [Fact]
    public void EveryEvalCaseOfAGeneratedPackExportsBitwiseAndRunsInOnnxRuntime()
    {
        // The pack covers what the committed test data do not: SE-ResNet blocks (with trace taps in their tree), timm's
        // and torchvision's SE options, coordatt.py's CA, every conv geometry and small networks.
        string pack = Path.Combine(_temp, "pack");
        var (code, stdout, err) = CliHarness.Run("pack", "--out", pack);
        Assert.True(code == ExitCodes.Ok, stdout + err);
        int exported = 0;
        foreach (var dir in Directory.GetDirectories(pack).Order(StringComparer.Ordinal))
        {
            var folder = CaseFolder.Open(dir);
            if (folder.Config.Has("training") && folder.Config.GetBool("training")) continue;
            var r = OnnxExport.ExportCase(folder, Path.Combine(_temp, "x", folder.Name));
            Assert.True(r.Bitwise, $"{folder.Name}: onnx run differs from the oracle by {r.MaxAbsDifference:E2}");
            var rows = OrtCheck.Compare(Path.Combine(r.Float32, "model.onnx"), Path.Combine(r.Float32, "test_data_set_0", "input_0.pb"));
            Assert.True(rows.All(row => !row.Over), $"{folder.Name}: " + string.Join("\n", rows.Where(row => row.Over).Take(3)));
            exported++;
        }
        log.WriteLine($"{exported} eval cases exported bitwise, ONNX Runtime within tolerance on every node");
        Assert.True(exported >= 40, $"only {exported} eval cases in the pack");
    }

    [Fact]
    public void TrainingCasesAndTargetsInsideTheCaseAreRefused()
    {
        string train = CliHarness.CopyFolder(Path.Combine(Data, "libtorch-2.10", "ca_c12_train"), _temp);
        var (code, _, err) = CliHarness.Run("export", train, "--onnx", Path.Combine(_temp, "x"));
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Contains("training-mode case cannot be exported", err);
        string eval = CliHarness.CopyFolder(Path.Combine(Data, "libtorch-2.10", "se_c32_r8_bias"), _temp);
        var before = CliHarness.Hashes(eval);
        (code, _, err) = CliHarness.Run("export", eval, "--onnx", Path.Combine(eval, "onnx"));
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Contains("inside the case folder", err);
        Assert.Equal(before, CliHarness.Hashes(eval));
        Assert.False(Directory.Exists(Path.Combine(eval, "onnx")));
        (code, var stdout, err) = CliHarness.Run("export", eval, "--onnx", Path.Combine(_temp, "se"));
        Assert.True(code == ExitCodes.Ok, stdout + err);
        Assert.Contains("bitwise equal to the oracle", stdout);
        Assert.True(File.Exists(Path.Combine(_temp, "se", "float32", "test_data_set_0", "output_0.pb")));
    }

    [Fact]
    public void ExportWritesThroughNoSymbolicLink()
    {
        // Before, each of these wrote (exit 0): into a linked test-data folder, into the folder DIR links to (replacing its
        // model.onnx), and into the case through LINK/exp. Now each is refused before anything is written.
        string eval = CliHarness.CopyFolder(Path.Combine(Data, "libtorch-2.10", "se_c32_r8_bias"), _temp);
        var before = CliHarness.Hashes(eval);
        string elsewhere = Directory.CreateDirectory(Path.Combine(_temp, "elsewhere")).FullName;
        string inner = Path.Combine(_temp, "out1");
        Directory.CreateDirectory(Path.Combine(inner, "float32"));
        Directory.CreateSymbolicLink(Path.Combine(inner, "float32", "test_data_set_0"), elsewhere);
        string linkedDir = Path.Combine(_temp, "out2");
        Directory.CreateSymbolicLink(linkedDir, elsewhere);
        string linkToCase = Path.Combine(_temp, "case_link");
        Directory.CreateSymbolicLink(linkToCase, eval);
        foreach (var (target, message) in new[]
        {
            (inner, "is a symbolic link"), (linkedDir, "is a symbolic link"), (Path.Combine(linkToCase, "exp"), "inside the case folder"),
        })
        {
            var (code, stdout, err) = CliHarness.Run("export", eval, "--onnx", target);
            Assert.True(code == ExitCodes.BadInput, $"{target}: exit {code}\n{stdout}{err}");
            Assert.Contains(message, err);
        }
        Assert.Empty(Directory.GetFileSystemEntries(elsewhere));
        Assert.False(Directory.Exists(Path.Combine(inner, "float64")));
        Assert.Equal(before, CliHarness.Hashes(eval));
    }
}
