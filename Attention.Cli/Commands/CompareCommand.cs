using System.CommandLine;
using Attention.Reference.IO;

namespace Attention.Cli.Commands;

/// <summary><c>compare EXPECTED ACTUAL [--rtol R] [--atol A]</c>.</summary>
public static class CompareCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create(CliIO io)
    {
        var expectedArg = new Argument<string>("expected") { Description = "Expected tensors (.safetensors or .npy)." };
        var actualArg = new Argument<string>("actual") { Description = "Actual tensors (.safetensors or .npy)." };
        var rtolOpt = new Option<double?>("--rtol") { Description = "Relative tolerance (default 1e-10 for float64, 1e-5 when either side is float32)." };
        var atolOpt = new Option<double?>("--atol") { Description = "Absolute tolerance (default rtol × max|e| of each tensor)." };
        var cmd = new Command("compare", "Compare tensors element-wise: |a − e| ≤ atol + rtol·|e|. Exit 0 when all pass, 1 otherwise.")
        {
            expectedArg, actualArg, rtolOpt, atolOpt,
        };
        cmd.SetAction(p => io.Guard(() =>
        {
            double? rtol = ToleranceOptions.Validate(p.GetValue(rtolOpt), "--rtol");
            double? atol = ToleranceOptions.Validate(p.GetValue(atolOpt), "--atol");
            string expectedPath = p.GetValue(expectedArg)!, actualPath = p.GetValue(actualArg)!;
            var expected = TensorFiles.Read(expectedPath, out var metadata);
            var actual = TensorFiles.Read(actualPath);
            var results = TensorFiles.SingleTensorPair(expected, actual, expectedPath, actualPath) is var (e, a)
                ? [TensorComparer.Compare(e, a, rtol, atol)]
                : TensorComparer.CompareSets(expected, actual, rtol, atol, actualPath);
            foreach (var r in results) io.Out.WriteLine(r);
            int failed = results.Count(r => !r.Passed);
            io.Out.WriteLine(failed == 0 ? $"PASS: {results.Count} tensors agree" : $"FAIL: {failed} of {results.Count} tensors disagree");
            // A module dump (its "order" metadata lists the modules in call order): name the first module that disagrees.
            if (failed > 0 && metadata.TryGetValue(DumpComparer.OrderKey, out var order))
                io.Out.WriteLine(DumpComparer.Describe(DumpComparer.FirstDivergence(results, order)!));
            return failed == 0 ? ExitCodes.Ok : ExitCodes.Mismatch;
        }));
        return cmd;
    }
}

/// <summary>Reads tensors from .safetensors or .npy files.</summary>
public static class TensorFiles
{
    /// <summary>Every tensor of a .safetensors file, or the one tensor of a .npy file.</summary>
    public static List<StoredTensor> Read(string path) => Read(path, out _);

    /// <summary>Every tensor of a .safetensors file (and its metadata), or the one tensor of a .npy file.</summary>
    public static List<StoredTensor> Read(string path, out Dictionary<string, string> metadata)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such file.", path);
        metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        return path.EndsWith(".npy", StringComparison.OrdinalIgnoreCase) ? [Npy.Read(path)] : SafeTensors.Read(path, out metadata);
    }

    /// <summary>
    /// When either side is a .npy file and both hold one tensor, the pair to compare whatever their names; otherwise
    /// null (tensors are then paired by name).
    /// </summary>
    public static (StoredTensor Expected, StoredTensor Actual)? SingleTensorPair(
        List<StoredTensor> expected, List<StoredTensor> actual, string expectedPath, string actualPath)
    {
        if (expected.Count == 0) throw new InvalidDataException($"{expectedPath}: holds no tensors.");
        return expected.Count == 1 && actual.Count == 1 && (IsNpy(expectedPath) || IsNpy(actualPath))
            ? (expected[0], actual[0])
            : null;
    }

    private static bool IsNpy(string path) => path.EndsWith(".npy", StringComparison.OrdinalIgnoreCase);
}
