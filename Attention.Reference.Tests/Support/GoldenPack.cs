using Attention.Reference.Cases;
using Attention.Reference.Models;
using Attention.Reference.IO;

namespace Attention.Reference.Tests.Support;

/// <summary>The libtorch 2.10 float64 golden pack, copied into testdata/ so a clone needs nothing outside the repository.</summary>
public static class GoldenPack
{
    /// <summary>The pack folder in the test output directory.</summary>
    public static string Folder => Path.Combine(AppContext.BaseDirectory, "testdata", "libtorch-2.10");

    /// <summary>The folder of one case.</summary>
    public static string CasePath(string name) => Path.Combine(Folder, name);

    /// <summary>Every case name of the pack.</summary>
    public static IEnumerable<string> CaseNames => Directory.GetDirectories(Folder).Select(Path.GetFileName).Order(StringComparer.Ordinal)!;

    /// <summary>
    /// Runs the float64 oracle on a golden case and asserts every expected tensor within |a − e| ≤ atol + rtol·|e|,
    /// atol = rtol·max|e| with the file's noise floor, exactly as <c>attention-ref compare</c> judges it (rtol 1e-10:
    /// both sides are float64; only the order of summation differs). Returns the comparisons.
    /// </summary>
    public static List<TensorComparison> AssertMatches(string caseName, double rtol = 1e-10)
    {
        var folder = CaseFolder.Open(CasePath(caseName));
        var actual = folder.Run<double>();
        var expected = folder.ReadExpected() ?? throw new InvalidOperationException($"{caseName} has no expected.safetensors");
        var stored = actual.Select(kv => new StoredTensor(kv.Key, StoredDType.F64, kv.Value.ShapeArray(), kv.Value.Data)).ToList();
        var results = TensorComparer.CompareSets(expected, stored, rtol, actualDescription: "the oracle's outputs");
        var failed = results.Where(r => !r.Passed).ToList();
        Assert.True(failed.Count == 0, $"{caseName}:\n" + string.Join("\n", failed));
        return results;
    }
}
