using Attention.Reference.Cases;
using Attention.Reference.Models;
using Attention.Reference.Layers;

namespace Attention.Reference.Tests.Layers.Se;

/// <summary>Bad input gives clear exceptions naming the key or tensor; NaN handling as documented.</summary>
public sealed class SeValidationTests
{
    private static (CaseConfig, TensorSet<double>, TensorSet<double>) Valid()
    {
        var (o, x, dy, p) = SeTestData.Random(1, 2, 8, 2, 3, 3, true, SeGate.Sigmoid, SePool.Avg);
        return SeTestData.AsCase(o, x, dy, p);
    }

    private static TensorSet<double> Run(CaseConfig config, TensorSet<double> inputs, TensorSet<double> ps) =>
        SeTestData.Module.Run(config, inputs, ps, RunOptions.Default);

    [Theory]
    [InlineData("{\"module\":\"se\",\"channels\":8,\"hidden\":0}", "'hidden'", "at least 1")]
    [InlineData("{\"module\":\"se\",\"channels\":8,\"hidden\":-2}", "'hidden'", "at least 1")]
    [InlineData("{\"module\":\"se\",\"channels\":8,\"reduction\":16}", "8 // 16 = 0", "below 1")]
    [InlineData("{\"module\":\"se\",\"channels\":8,\"reduction\":0}", "'reduction'", "at least 1")]
    [InlineData("{\"module\":\"se\",\"channels\":8,\"hidden\":2,\"reduction\":4}", "not both", "'hidden'")]
    [InlineData("{\"module\":\"se\",\"channels\":8}", "neither", "'reduction'")]
    [InlineData("{\"module\":\"se\",\"channels\":8,\"hidden\":2,\"gate\":\"swish\"}", "unknown gate 'swish'", "tanh")]
    [InlineData("{\"module\":\"se\",\"channels\":8,\"hidden\":2,\"pool\":\"sum\"}", "unknown pool 'sum'", "\"max\"")]
    [InlineData("{\"module\":\"se\",\"channels\":8,\"hidden\":2,\"ratio\":4}", "unknown key 'ratio'", "reduction")]
    [InlineData("{\"module\":\"se\",\"channels\":8,\"hidden\":2,\"bias\":\"yes\"}", "'bias'", "true or false")]
    public void BadConfigIsACaseFormatError(string json, string part1, string part2)
    {
        var (_, inputs, ps) = Valid();
        var e = Assert.Throws<CaseFormatException>(() => Run(CaseConfig.Parse(json), inputs, ps));
        Assert.Contains(part1, e.Message);
        Assert.Contains(part2, e.Message);
    }

    [Fact]
    public void WeightShapesThatDisagreeWithChannelsAreNamed()
    {
        var (config, inputs, ps) = Valid();
        ps.Set("fc1.weight", new DenseTensor<double>(2, 7));
        var e = Assert.Throws<ShapeMismatchException>(() => Run(config, inputs, ps));
        Assert.Equal("fc1.weight", e.TensorName);
        Assert.Contains("[2, 7]", e.Message);
        Assert.Contains("[2, 8] or [2, 8, 1, 1]", e.Message);

        (config, inputs, ps) = Valid();
        ps.Set("fc2.weight", new DenseTensor<double>(8, 2, 3, 3));
        Assert.Equal("fc2.weight", Assert.Throws<ShapeMismatchException>(() => Run(config, inputs, ps)).TensorName);

        (config, inputs, ps) = Valid();
        ps.Set("fc2.bias", new DenseTensor<double>(7));
        Assert.Equal("fc2.bias", Assert.Throws<ShapeMismatchException>(() => Run(config, inputs, ps)).TensorName);

        (config, inputs, ps) = Valid();
        inputs.Set("x", new DenseTensor<double>(2, 6, 3, 3));
        var ex = Assert.Throws<ShapeMismatchException>(() => Run(config, inputs, ps));
        Assert.Equal("x", ex.TensorName);
        Assert.Contains("channels = 8", ex.Message);

        (config, inputs, ps) = Valid();
        inputs.Set("y.grad", new DenseTensor<double>(2, 8, 3, 2));
        Assert.Equal("y.grad", Assert.Throws<ShapeMismatchException>(() => Run(config, inputs, ps)).TensorName);
    }

    [Fact]
    public void UnknownOrMissingParametersAreRejected()
    {
        var (config, inputs, ps) = Valid();
        ps.Set("fc3.weight", new DenseTensor<double>(1));
        Assert.Contains("fc3.weight", Assert.Throws<InvalidDataException>(() => Run(config, inputs, ps)).Message);

        var noBias = CaseConfig.Parse("{\"module\":\"se\",\"channels\":8,\"hidden\":2,\"bias\":false}");
        (_, inputs, ps) = Valid();
        Assert.Contains("fc1.bias", Assert.Throws<InvalidDataException>(() => Run(noBias, inputs, ps)).Message);

        (config, inputs, ps) = Valid();
        var missing = new TensorSet<double>("params");
        missing.Set("fc1.weight", ps.Get("fc1.weight"));
        missing.Set("fc2.weight", ps.Get("fc2.weight"));
        Assert.Contains("fc1.bias", Assert.Throws<KeyNotFoundException>(() => Run(config, inputs, missing)).Message);
    }

    [Fact]
    public void InputsAreNotModified()
    {
        var (config, inputs, ps) = Valid();
        var before = inputs.Clone();
        var pBefore = ps.Clone();
        Run(config, inputs, ps);
        SeTestData.Module.Run(config, inputs.Cast<float>(), ps.Cast<float>(), RunOptions.Default);
        foreach (var (name, t) in before) Assert.Equal(t.Data, inputs.Get(name).Data);
        foreach (var (name, t) in pBefore) Assert.Equal(t.Data, ps.Get(name).Data);
    }

    /// <summary>
    /// NaN handling (docs/derivations/se.md): a NaN in x[n, c] makes z[n, c] NaN (avg) or wins the max, which spreads
    /// through fc1 (relu(NaN) = NaN, as PyTorch) to every gate of sample n: y[n] is all NaN, other samples are
    /// untouched; in backward every parameter gradient (a batch sum) is NaN, x.grad is NaN on sample n only.
    /// </summary>
    [Theory]
    [InlineData("avg", false)]
    [InlineData("max", false)]
    [InlineData("avg", true)]
    [InlineData("max", true)]
    public void NaNInOneSampleSpreadsToThatSampleOnly(string pool, bool fast)
    {
        var (o, x, dy, p) = SeTestData.Random(2, 2, 4, 2, 2, 2, true, SeGate.Sigmoid, pool == "avg" ? SePool.Avg : SePool.Max);
        var (_, inputs, ps) = SeTestData.AsCase(o, x, dy, p);
        var config = CaseConfig.Parse($"{{\"module\":\"se\",\"channels\":4,\"hidden\":2,\"pool\":\"{pool}\"}}");
        x.Data[1 * 16 + 2 * 4 + 3] = double.NaN; // sample 1, channel 2
        var r = fast
            ? SeTestData.Module.Run(config, inputs.Cast<float>(), ps.Cast<float>(), RunOptions.Default).Cast<double>()
            : Run(config, inputs, ps);
        var y = r.Get("y");
        var dx = r.Get("x.grad");
        for (int i = 0; i < 16; i++)
        {
            Assert.False(double.IsNaN(y.Data[i]));
            Assert.False(double.IsNaN(dx.Data[i]));
            Assert.True(double.IsNaN(y.Data[16 + i]));
            Assert.True(double.IsNaN(dx.Data[16 + i]));
        }
        foreach (var name in new[] { "fc1.weight.grad", "fc1.bias.grad", "fc2.weight.grad", "fc2.bias.grad" })
            Assert.All(r.Get(name).Data, v => Assert.True(double.IsNaN(v), name));
    }
}
