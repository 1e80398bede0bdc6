using Attention.Reference.Cases;
using Attention.Reference.Models;
using Attention.Reference.IO;

namespace Attention.Reference.Tests.IO;

public class TensorTests
{
    [Fact]
    public void ShapeMismatchNamesTensorAndBothShapes()
    {
        var t = new DenseTensor<double>(2, 3);
        var e = Assert.Throws<ShapeMismatchException>(() => ShapeUtil.Require(t, "fc1.weight", 4, 16));
        Assert.Equal("Tensor 'fc1.weight' has shape [2, 3], expected [4, 16].", e.Message);
    }

    [Fact]
    public void ConstructorRejectsWrongLengthAndNegativeDims()
    {
        Assert.Contains("does not fit shape [2, 2]", Assert.Throws<ArgumentException>(() => new DenseTensor<float>(new float[3], 2, 2)).Message);
        Assert.Contains("negative dimension", Assert.Throws<ArgumentException>(() => new DenseTensor<float>(2, -1)).Message);
    }

    [Fact]
    public void NchwIndexingIsRowMajor()
    {
        var t = new DenseTensor<double>(2, 3, 4, 5);
        t[1, 2, 3, 4] = 9;
        Assert.Equal(9, t.Data[((1 * 3 + 2) * 4 + 3) * 5 + 4]);
    }

    [Fact]
    public void TensorSetNamesMissingAndUnknownTensors()
    {
        var set = new TensorSet<double>("params.safetensors");
        set.Set("alpha", new DenseTensor<double>(1));
        Assert.Contains("params.safetensors has no tensor 'gamma' (it has: alpha)", Assert.Throws<KeyNotFoundException>(() => set.Get("gamma")).Message);
        Assert.Contains("unknown tensor 'alpha'", Assert.Throws<InvalidDataException>(() => set.RejectUnknown(["beta"])).Message);
    }

    [Fact]
    public void ConfigRejectsUnknownKeysAndWrongTypes()
    {
        var c = CaseConfig.Parse("{\"module\":\"se\",\"channels\":16,\"kernel_size\":[1,3],\"bias\":true,\"colour\":\"red\"}");
        Assert.Equal((1, 3), c.GetPair("kernel_size"));
        Assert.Equal((16, 16), c.GetPair("channels"));
        Assert.Contains("unknown key 'colour'", Assert.Throws<CaseFormatException>(() => c.RejectUnknownKeys(["channels", "kernel_size", "bias"])).Message);
        Assert.Contains("'bias' must be an integer", Assert.Throws<CaseFormatException>(() => c.GetInt("bias")).Message);
        Assert.Contains("needs key 'hidden'", Assert.Throws<CaseFormatException>(() => c.GetInt("hidden")).Message);
        Assert.Contains("not valid JSON", Assert.Throws<CaseFormatException>(() => CaseConfig.Parse("{")).Message);
        Assert.Contains("appears twice", Assert.Throws<CaseFormatException>(() => CaseConfig.Parse("{\"module\":\"a\",\"module\":\"b\"}")).Message);
    }

    [Theory]
    [InlineData("{\"module\":\"se\",\"bi\\udc00as\":true}")]          // an escaped lone surrogate in a key
    [InlineData("{\"module\":\"se\\ud800\"}")]                      // ... in the module name
    [InlineData("{\"module\":\"se\",\"pool\":\"a\\ud800\\u0041\"}")]  // ... in another string value
    [InlineData("{\"module\":\"se\",\"x\":[{\"\\ud800\":1}]}")]      // ... nested
    public void ConfigRefusesEscapedLoneSurrogatesAsACaseFormatError(string json)
    {
        var e = Assert.Throws<CaseFormatException>(() => CaseConfig.Parse(json, "c.json"));
        Assert.StartsWith("c.json: ", e.Message);
        Assert.Contains("invalid escape", e.Message);
    }

    [Fact]
    public void ConfigRefusesRepeatedKeysInNestedObjectsAndRawLoneSurrogates()
    {
        Assert.StartsWith("c.json: ", Assert.Throws<CaseFormatException>(() =>
            CaseConfig.Parse("{\"module\":\"se\",\"x\":{\"a\":1,\"a\":2}}", "c.json")).Message);
        // Parse takes a string, which may hold an unpaired surrogate itself (File.ReadAllText never yields one).
        Assert.StartsWith("c.json: ", Assert.Throws<CaseFormatException>(() =>
            CaseConfig.Parse("{\"module\":\"se\ud800\"}", "c.json")).Message);
    }

    [Fact]
    public void UnknownModuleIsAClearError() =>
        Assert.Contains("unknown module 'nope'", Assert.Throws<CaseFormatException>(() => ModelZoo.Get("nope")).Message);

    [Fact]
    public void ComparerUsesScaledAbsoluteToleranceAndReportsWorstElement()
    {
        double[] e = [100, 1e-14, -3];
        double[] a = [100, 2e-14, -3.0000000001];
        var r = TensorComparer.Compare("t", e, a, [3], 1e-10);
        Assert.True(r.Passed, r.ToString()); // 1e-14 off at a near-zero element is judged against max|e| = 100
        var bad = TensorComparer.Compare("t", e, [100, 1e-14, -3.1], [3], 1e-10);
        Assert.False(bad.Passed);
        Assert.Equal([2], bad.WorstIndex);
        Assert.Equal(1, bad.Violations);
        Assert.False(TensorComparer.Compare("t", [1.0], [double.NaN], [1], 1e-10).Passed);
        Assert.True(TensorComparer.Compare("t", [double.NaN], [double.NaN], [1], 1e-10).Passed);
        Assert.Equal(1, TensorComparer.UlpsDouble(1.0, Math.BitIncrement(1.0)));
        Assert.Equal(2, TensorComparer.UlpsDouble(-double.Epsilon, double.Epsilon));
    }
}

public class NoiseFloorTests
{
    private static StoredTensor T(string name, params double[] v) => new(name, StoredDType.F64, [v.Length], v);

    [Fact]
    public void ATensorThatIsZeroInExactArithmeticIsJudgedAgainstTheFilesScale()
    {
        // Mirrors ca_c12_train: conv1.bias.grad is exactly 0 in exact arithmetic (training-mode BN removes shifts);
        // libtorch holds 5.8e-16 of rounding noise, the oracle -5.0e-16.
        var expected = new List<StoredTensor> { T("y", 1.08, -0.5), T("bias.grad", 5.828670879282072E-16, -1e-16) };
        var actual = new List<StoredTensor> { T("y", 1.08, -0.5), T("bias.grad", -4.996003610813204E-16, 2e-16) };
        Assert.All(TensorComparer.CompareSets(expected, actual, 1e-10), c => Assert.True(c.Passed, c.ToString()));
        // Judged alone (its own scale, as an explicit atol of rtol·max|e| would), the noise cannot agree.
        Assert.False(TensorComparer.Compare(expected[1], actual[1], 1e-10, atol: 1e-10 * 5.828670879282072E-16).Passed);
    }

    [Fact]
    public void TheFloorDoesNotHideRealErrors()
    {
        var expected = new List<StoredTensor> { T("y", 3.0, -1.0), T("small.grad", 1e-3, 2e-3) };
        // An error of 1e-12 absolute in a tensor of scale 2e-3 is 5e-10 relative: a real disagreement at rtol 1e-10,
        // and far above the floor 64·ε·3 ≈ 4.3e-14.
        var actual = new List<StoredTensor> { T("y", 3.0, -1.0), T("small.grad", 1e-3 + 1e-12, 2e-3) };
        var results = TensorComparer.CompareSets(expected, actual, 1e-10);
        Assert.True(results[0].Passed);
        Assert.False(results[1].Passed, results[1].ToString());
        // A 1e-9 relative error in the largest tensor fails too.
        Assert.False(TensorComparer.CompareSets(expected, [T("y", 3.0 * (1 + 1e-9), -1.0), expected[1]], 1e-10)[0].Passed);
    }
}
