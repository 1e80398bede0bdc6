using Attention.Reference.Cases;
using Attention.Reference.Models;
using Attention.Reference.Ops;

namespace Attention.Reference.Tests.Layers.Gct;

/// <summary>Bad input to GCT gives clear errors naming the key or tensor, the expected and the actual.</summary>
public sealed class GctValidationTests
{
    private static readonly ModelFactory Gct = ModelZoo.Get("gct");

    private static (CaseConfig Config, TensorSet<double> Inputs, TensorSet<double> Params) Valid(params (string, object)[] extra)
    {
        var gc = GctTestData.Case(1, "l2", false, 2, 3, 2, 2);
        var entries = new List<(string, object)> { ("channels", 3) };
        entries.AddRange(extra);
        return (CaseConfig.Create("gct", entries.ToArray()), gc.Inputs, gc.Parameters);
    }

    [Fact]
    public void RegisteredUnderGct() => Assert.IsType<GctFactory>(ModelZoo.Get("gct"));

    [Fact]
    public void DefaultsAreL2WithEpsilon1e5()
    {
        var (config, inputs, ps) = Valid();
        var m = Assert.IsType<Attention.Reference.Layers.GctLayer<double>>(Gct.Build<double>(config));
        Assert.Equal(GctMode.L2, m.Mode);
        Assert.Equal(1e-5, m.Epsilon);
        Assert.False(m.AfterRelu);
        Assert.NotNull(Gct.Run(config, inputs, ps, RunOptions.Default).Get("y"));
    }

    [Theory]
    [InlineData("l3")]
    [InlineData("L2")]
    [InlineData("")]
    public void UnknownModeNamesTheModeAndTheAllowedOnes(string mode)
    {
        var (config, inputs, ps) = Valid(("mode", mode));
        var e = Assert.Throws<CaseFormatException>(() => Gct.Run(config, inputs, ps, RunOptions.Default));
        Assert.Contains($"'{mode}'", e.Message);
        Assert.Contains("'l2'", e.Message);
        Assert.Contains("'l1'", e.Message);
        var e2 = Assert.Throws<ArgumentException>(() => GctModes.Parse(mode));
        Assert.Contains($"'{mode}'", e2.Message);
    }

    [Fact]
    public void NegativeEpsilonIsRejected()
    {
        var (config, inputs, ps) = Valid(("epsilon", -1e-5));
        var e = Assert.Throws<CaseFormatException>(() => Gct.Run(config, inputs, ps, RunOptions.Default));
        Assert.Contains("epsilon", e.Message);
        Assert.Contains("-1E-05", e.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Throws<ArgumentOutOfRangeException>(() => new Attention.Reference.Layers.GctLayer<double>(3, -1e-5));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Attention.Reference.Layers.GctLayer<double>(3, double.NaN));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Attention.Reference.Layers.GctLayer<double>(-1));
    }

    [Fact]
    public void ZeroEpsilonIsAllowed()
    {
        var (config, inputs, ps) = Valid(("epsilon", 0.0));
        var y = Gct.Run(config, inputs, ps, RunOptions.Default).Get("y");
        Assert.All(y.Data, v => Assert.True(double.IsFinite(v)));
    }

    [Fact]
    public void UnknownKeyIsRejected()
    {
        var (config, inputs, ps) = Valid(("reduction", 4));
        var e = Assert.Throws<CaseFormatException>(() => Gct.Run(config, inputs, ps, RunOptions.Default));
        Assert.Contains("reduction", e.Message);
    }

    [Fact]
    public void MissingChannelsIsRejected()
    {
        var gc = GctTestData.Case(1, "l2", false, 2, 3, 2, 2);
        var e = Assert.Throws<CaseFormatException>(() => Gct.Run(CaseConfig.Create("gct"), gc.Inputs, gc.Parameters, RunOptions.Default));
        Assert.Contains("channels", e.Message);
    }

    [Fact]
    public void InputWithOtherChannelCountNamesX()
    {
        var (config, _, ps) = Valid();
        var inputs = new TensorSet<double>("inputs");
        inputs.Set("x", new DenseTensor<double>(2, 4, 2, 2));
        var e = Assert.Throws<ShapeMismatchException>(() => Gct.Run(config, inputs, ps, RunOptions.Default));
        Assert.Equal("x", e.TensorName);
        Assert.Contains("[2, 4, 2, 2]", e.Message);
        Assert.Contains("[N, 3, H, W]", e.Message);
        inputs.Set("x", new DenseTensor<double>(3, 2, 2));
        Assert.Equal("x", Assert.Throws<ShapeMismatchException>(() => Gct.Run(config, inputs, ps, RunOptions.Default)).TensorName);
    }

    [Fact]
    public void UpstreamGradientOfOtherShapeNamesYGrad()
    {
        var (config, inputs, ps) = Valid();
        inputs.Set("y.grad", new DenseTensor<double>(2, 3, 2, 3));
        var e = Assert.Throws<ShapeMismatchException>(() => Gct.Run(config, inputs, ps, RunOptions.Default));
        Assert.Equal("y.grad", e.TensorName);
        var e32 = Assert.Throws<ShapeMismatchException>(() => Gct.Run(config, inputs.Cast<float>(), ps.Cast<float>(), RunOptions.Default));
        Assert.Equal("y.grad", e32.TensorName);
    }

    [Theory]
    [InlineData("alpha")]
    [InlineData("gamma")]
    [InlineData("beta")]
    public void ParameterOfOtherShapeIsNamed(string name)
    {
        var (config, inputs, ps) = Valid();
        ps.Set(name, new DenseTensor<double>(3));
        var e = Assert.Throws<ShapeMismatchException>(() => Gct.Run(config, inputs, ps, RunOptions.Default));
        Assert.Equal(name, e.TensorName);
        Assert.Contains("[1, 3, 1, 1]", e.Message);
    }

    [Fact]
    public void UnknownOrMissingTensorsAreRejected()
    {
        var (config, inputs, ps) = Valid();
        ps.Set("delta", new DenseTensor<double>(1, 3, 1, 1));
        Assert.Contains("delta", Assert.Throws<InvalidDataException>(() => Gct.Run(config, inputs, ps, RunOptions.Default)).Message);
        var (config2, inputs2, ps2) = Valid();
        inputs2.Set("z", new DenseTensor<double>(1));
        Assert.Contains("'z'", Assert.Throws<InvalidDataException>(() => Gct.Run(config2, inputs2, ps2, RunOptions.Default)).Message);
        var missing = new TensorSet<double>("params");
        missing.Set("alpha", ps2.Get("alpha"));
        missing.Set("beta", ps2.Get("beta"));
        Assert.Contains("gamma", Assert.Throws<KeyNotFoundException>(() => Gct.Run(config2, inputs, missing, RunOptions.Default)).Message);
    }

    /// <summary>
    /// Sizes before allocation (issue 31): a case.json claiming 10⁷ channels against a 3-channel state_dict is refused
    /// by the state_dict check without allocating the layer's 3·10⁷ parameters (they were built first: 10⁹ channels took
    /// 7.7 GB).
    /// </summary>
    [Fact]
    public void HugeChannelCountIsRefusedBeforeAnyParameterIsAllocated()
    {
        var (_, inputs, ps) = Valid();
        var config = CaseConfig.Create("gct", ("channels", 10_000_000)); // 240 MB of float64 parameters if built eagerly
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.ThrowsAny<Exception>(() => Gct.Run(config, inputs, ps, RunOptions.Default));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(e is Attention.Reference.Models.StateDictException or ShapeMismatchException, e.ToString());
        Assert.Contains("alpha", e.Message);
        Assert.True(allocated < 64L << 20, $"{allocated} bytes allocated before the refusal");
    }
}
