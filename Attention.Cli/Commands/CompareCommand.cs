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
            double? rtol = p.GetValue(rtolOpt), atol = p.GetValue(atolOpt);
            if (rtol is < 0 or double.NaN) throw new ArgumentException($"--rtol must be a non-negative number, got {rtol}.");
            if (atol is < 0 or double.NaN) throw new ArgumentException($"--atol must be a non-negative number, got {atol}.");
            string expectedPath = p.GetValue(expectedArg)!, actualPath = p.GetValue(actualArg)!;
            var expected = TensorFiles.Read(expectedPath);
            var actual = TensorFiles.Read(actualPath);
            var results = TensorFiles.Match(expected, actual, expectedPath, actualPath)
                .Select(pair => pair.Actual is null
                    ? new TensorComparison { Name = pair.Expected.Name, Problem = $"missing from {actualPath}" }
                    : TensorComparer.Compare(pair.Expected, pair.Actual, rtol, atol))
                .ToList();
            foreach (var r in results) io.Out.WriteLine(r);
            int failed = results.Count(r => !r.Passed);
            io.Out.WriteLine(failed == 0 ? $"PASS: {results.Count} tensors agree" : $"FAIL: {failed} of {results.Count} tensors disagree");
            return failed == 0 ? ExitCodes.Ok : ExitCodes.Mismatch;
        }));
        return cmd;
    }
}

/// <summary>Reads tensors from .safetensors or .npy files.</summary>
public static class TensorFiles
{
    /// <summary>Every tensor of a .safetensors file, or the one tensor of a .npy file.</summary>
    public static List<StoredTensor> Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such file.", path);
        return path.EndsWith(".npy", StringComparison.OrdinalIgnoreCase) ? [Npy.Read(path)] : SafeTensors.Read(path);
    }

    /// <summary>
    /// Pairs each expected tensor with the actual of the same name. Two single-tensor files (e.g. two .npy) are paired
    /// whatever their names.
    /// </summary>
    public static List<(StoredTensor Expected, StoredTensor? Actual)> Match(
        List<StoredTensor> expected, List<StoredTensor> actual, string expectedPath, string actualPath)
    {
        if (expected.Count == 0) throw new InvalidDataException($"{expectedPath}: holds no tensors.");
        if (expected.Count == 1 && actual.Count == 1 && (IsNpy(expectedPath) || IsNpy(actualPath)))
            return [(expected[0], actual[0])];
        var byName = actual.ToDictionary(t => t.Name, StringComparer.Ordinal);
        return expected.Select(e => (e, byName.GetValueOrDefault(e.Name))).ToList();
    }

    private static bool IsNpy(string path) => path.EndsWith(".npy", StringComparison.OrdinalIgnoreCase);
}
