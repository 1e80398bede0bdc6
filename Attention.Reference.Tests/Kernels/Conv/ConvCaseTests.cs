using Attention.Reference.Cases;
using Attention.Reference.Models;
using Attention.Reference.IO;
using Attention.Reference.Ops;
using Attention.Reference.Kernels.Conv;

namespace Attention.Reference.Tests.Kernels.Conv;

/// <summary>The conv2d case module: libtorch golden cases, gradcheck, bad input.</summary>
public sealed class ConvCaseTests(ITestOutputHelper output)
{
    private static readonly ModelFactory Module = ModelZoo.Get("conv2d");

    private static readonly string[] PackCaseNames = ["conv_1x3_dilated_grouped", "conv_3x3_p1_bias", "conv_3x3_s2", "conv_depthwise_3x3"];

    public static TheoryData<string> PackCases => new(PackCaseNames);

    [Theory]
    [MemberData(nameof(PackCases))]
    public void ConvSpecMatchesLibtorch(string caseName)
    {
        var results = GoldenPack.AssertMatches(caseName, 1e-10);
        Assert.Contains(results, r => r.Name == "y");
        Assert.Contains(results, r => r.Name == "x.grad");
        Assert.Contains(results, r => r.Name == "weight.grad");
        foreach (var r in results) output.WriteLine($"spec {caseName} {r.Name}: max abs {r.MaxAbsError:E2}, max rel {r.MaxRelError:E2}");
    }

    [Theory]
    [MemberData(nameof(PackCases))]
    public void ConvFastFloat64MatchesLibtorch(string caseName)
    {
        var folder = CaseFolder.Open(GoldenPack.CasePath(caseName));
        var g = Conv2dFactory.ReadGeometry(folder.Config, out bool hasBias);
        var inputs = folder.ReadInputs<double>();
        var ps = folder.ReadParameters<double>();
        var x = inputs.Get("x");
        var dy = inputs.Get("y.grad");
        var w = ps.Get("weight");
        var actual = new Dictionary<string, DenseTensor<double>>
        {
            ["y"] = Conv2d.Forward(x, w, hasBias ? ps.Get("bias") : null, g),
            ["x.grad"] = Conv2d.BackwardInput(dy, w, g, x.Dim(2), x.Dim(3)),
            ["weight.grad"] = Conv2d.BackwardWeight(x, dy, g),
        };
        if (hasBias) actual["bias.grad"] = Conv2d.BackwardBias(dy);
        var expected = folder.ReadExpected()!;
        Assert.Equal(actual.Keys.Order(), expected.Select(e => e.Name).Order());
        foreach (var e in expected)
        {
            var a = actual[e.Name];
            var r = TensorComparer.Compare(e, new StoredTensor(e.Name, StoredDType.F64, a.ShapeArray(), a.Data), 1e-10);
            output.WriteLine($"fast {caseName} {r.Name}: max abs {r.MaxAbsError:E2}, max rel {r.MaxRelError:E2}");
            Assert.True(r.Passed, r.ToString());
        }
    }

    [Fact]
    public void EveryConvCaseOfThePackIsCovered() =>
        Assert.Equal(PackCaseNames, GoldenPack.CaseNames.Where(n => n.StartsWith("conv", StringComparison.Ordinal)));

    [Fact]
    public void ConvGradcheckOnEveryGeneratedVariant()
    {
        int count = 0;
        foreach (var c in Module.Generate(5)) count += GradCheck.CheckCase(Module, c, maxElementsPerTensor: 60);
        Assert.True(count > 500);
    }

    [Fact]
    public void ConvGeneratedCasesCoverEveryVariant()
    {
        var cases = Module.Generate(1).ToList();
        var geos = cases.Select(c => Conv2dFactory.ReadGeometry(c.Config, out _)).ToList();
        Assert.Contains(geos, g => g.Stride.H > 1 || g.Stride.W > 1);
        Assert.Contains(geos, g => g.Padding.H > 0);
        Assert.Contains(geos, g => g.Dilation.H > 1 || g.Dilation.W > 1);
        Assert.Contains(geos, g => g.Groups > 1 && g.Groups < g.InChannels);
        Assert.Contains(geos, g => g.Groups == g.InChannels && g.Groups > 1);
        Assert.Contains(geos, g => g.Kernel == (1, 1));
        Assert.Contains(geos, g => g.Kernel.H != g.Kernel.W);
        Assert.Contains(cases, c => c.Parameters.Contains("bias"));
        Assert.Contains(cases, c => !c.Parameters.Contains("bias"));
        foreach (var c in cases) Assert.True(c.Inputs.Contains("y.grad"));
    }

    [Fact]
    public void ConvFloat32CaseRunIsCloseToTheOracle()
    {
        foreach (var c in Module.Generate(3))
        {
            var oracle = Module.Run(c.Config, c.Inputs, c.Parameters, RunOptions.Default);
            var fast = Module.Run(c.Config, c.Inputs.Cast<float>(), c.Parameters.Cast<float>(), RunOptions.Default);
            Assert.Equal(oracle.Names, fast.Names);
            foreach (var (name, e) in oracle)
            {
                var a = fast.Get(name);
                double max = e.Data.Max(Math.Abs);
                for (int i = 0; i < e.Length; i++)
                    Assert.True(Math.Abs(e.Data[i] - a.Data[i]) <= 2e-6 * Math.Max(max, 1), $"{c.Name} {name}[{i}]: {a.Data[i]} vs {e.Data[i]}");
            }
        }
    }

    [Fact]
    public void ConvRunRecordsTheTraceAndLeavesInputsUntouched()
    {
        var c = Module.Generate(2).First(g => g.Parameters.Contains("bias"));
        var before = c.Inputs.Clone();
        var trace = new TraceLog();
        var result = Module.Run(c.Config, c.Inputs, c.Parameters, new RunOptions { Trace = trace });
        Assert.Equal(["conv.1", "conv.4", "conv.5", "conv.6"], trace.Steps.Select(s => s.Equation));
        Assert.Equal(["y", "x.grad", "weight.grad", "bias.grad"], result.Names);
        foreach (var (name, t) in before) Bitwise.AssertIdentical(t, c.Inputs.Get(name), name);
    }

    [Fact]
    public void ConvAcceptsIntsAndPairsWithNnConv2dDefaults()
    {
        var g = Conv2dFactory.ReadGeometry(CaseConfig.Create("conv2d", ("in_channels", 4), ("out_channels", 6), ("kernel_size", new[] { 3, 1 })), out bool bias);
        Assert.Equal(new Conv2dGeometry(4, 6, (3, 1), (1, 1), (0, 0), (1, 1), 1), g);
        Assert.True(bias);
    }

    // ------------------------------------------------------------------ bad input

    private static CaseConfig Config(params (string, object)[] extra)
    {
        var entries = new List<(string, object)> { ("in_channels", 4), ("out_channels", 6), ("kernel_size", 3) };
        foreach (var e in extra)
        {
            entries.RemoveAll(x => x.Item1 == e.Item1);
            entries.Add(e);
        }
        return CaseConfig.Create("conv2d", entries.ToArray());
    }

    [Theory]
    [InlineData("in_channels", 0, "in_channels must be positive, got 0")]
    [InlineData("out_channels", -2, "out_channels must be positive, got -2")]
    [InlineData("kernel_size", 0, "kernel_size must be positive, got [0, 0]")]
    [InlineData("stride", 0, "stride must be positive, got [0, 0]")]
    [InlineData("dilation", -1, "dilation must be positive, got [-1, -1]")]
    [InlineData("padding", -1, "padding must be non-negative, got [-1, -1]")]
    [InlineData("groups", 0, "groups must be positive, got 0")]
    [InlineData("groups", 3, "in_channels (4) must be divisible by groups (3)")]
    public void ConvRejectsBadHyperParameters(string key, int value, string message)
    {
        var e = Assert.Throws<CaseFormatException>(() => Conv2dFactory.ReadGeometry(Config((key, value)), out _));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void ConvRejectsOutChannelsNotDivisibleByGroups()
    {
        var e = Assert.Throws<CaseFormatException>(() => Conv2dFactory.ReadGeometry(Config(("groups", 4), ("out_channels", 6)), out _));
        Assert.Contains("out_channels (6) must be divisible by groups (4)", e.Message);
    }

    [Fact]
    public void ConvRejectsUnknownKeysAndIllTypedValues()
    {
        Assert.Contains("unknown key 'kernel'", Assert.Throws<CaseFormatException>(() => Conv2dFactory.ReadGeometry(Config(("kernel", 3)), out _)).Message);
        Assert.Contains("'stride' must be an integer or an [h, w] pair",
            Assert.Throws<CaseFormatException>(() => Conv2dFactory.ReadGeometry(Config(("stride", new[] { 1, 2, 3 })), out _)).Message);
    }

    [Fact]
    public void ConvRejectsAKernelLargerThanThePaddedInput()
    {
        var g = Conv2dGeometry.Square(2, 3, 5, padding: 1, dilation: 2);
        var x = new DenseTensor<double>(1, 2, 6, 9);
        var e = Assert.Throws<ArgumentException>(() => Conv2d.Forward(x, new DenseTensor<double>(g.WeightShape), null, g));
        Assert.Contains("dilated kernel [9, 9]", e.Message);
        Assert.Contains("padded input [8, 11]", e.Message);
        Assert.Throws<ArgumentException>(() => Conv2dSpec.Forward(x, new DenseTensor<double>(g.WeightShape), null, g));
    }

    [Fact]
    public void ConvRejectsTensorsWhoseShapeDisagreesWithTheConfig()
    {
        var c = Module.Generate(4).First(k => k.Name == "conv2d_3x3_p1_bias");
        var ps = c.Parameters.Clone();
        ps.Set("weight", new DenseTensor<double>(6, 4, 3, 2));
        var e = Assert.Throws<ShapeMismatchException>(() => Module.Run(c.Config, c.Inputs, ps, RunOptions.Default));
        Assert.Contains("'weight' has shape [6, 4, 3, 2], expected [6, 4, 3, 3]", e.Message);

        ps = c.Parameters.Clone();
        ps.Set("bias", new DenseTensor<double>(5));
        Assert.Contains("'bias' has shape [5], expected [6]", Assert.Throws<ShapeMismatchException>(() => Module.Run(c.Config, c.Inputs, ps, RunOptions.Default)).Message);

        var ins = c.Inputs.Clone();
        ins.Set("x", new DenseTensor<double>(2, 5, 7, 6));
        Assert.Contains("'x' has shape [2, 5, 7, 6]", Assert.Throws<ShapeMismatchException>(() => Module.Run(c.Config, ins, c.Parameters, RunOptions.Default)).Message);

        ins = c.Inputs.Clone();
        ins.Set("y.grad", new DenseTensor<double>(2, 6, 7, 5));
        Assert.Contains("'y.grad' has shape [2, 6, 7, 5], expected [2, 6, 7, 6]",
            Assert.Throws<ShapeMismatchException>(() => Module.Run(c.Config, ins, c.Parameters, RunOptions.Default)).Message);

        ps = c.Parameters.Clone();
        ps.Set("extra", new DenseTensor<double>(1));
        Assert.Contains("unknown tensor 'extra'", Assert.Throws<InvalidDataException>(() => Module.Run(c.Config, c.Inputs, ps, RunOptions.Default)).Message);

        var noBias = CaseConfig.Parse(c.Config.ToJson().Replace("\"bias\": true", "\"bias\": false"));
        Assert.Contains("unknown tensor 'bias'", Assert.Throws<InvalidDataException>(() => Module.Run(noBias, c.Inputs, c.Parameters, RunOptions.Default)).Message);
    }

    /// <summary>
    /// A zero-sized batch is valid: y is [0, C_out, H_out, W_out] (and x.grad and zero parameter gradients with y.grad),
    /// on every pack case's geometry, float64 and float32, forward only and forward + backward.
    /// </summary>
    [Theory]
    [MemberData(nameof(PackCases))]
    public void ZeroSizedBatchIsValid(string caseName)
    {
        var folder = CaseFolder.Open(GoldenPack.CasePath(caseName));
        var x = folder.ReadInputs<double>().Get("x");
        var empty = new DenseTensor<double>(0, x.Dim(1), x.Dim(2), x.Dim(3));
        var ps = folder.ReadParameters<double>();
        var forward = new TensorSet<double>("inputs");
        forward.Set("x", empty);
        var y = Module.Run(folder.Config, forward, ps, RunOptions.Default).Get("y");
        Assert.Equal(0, y.Dim(0));
        var y32 = Module.Run(folder.Config, forward.Cast<float>(), ps.Cast<float>(), RunOptions.Default).Get("y");
        Assert.Equal(y.ShapeArray(), y32.ShapeArray());
        var both = new TensorSet<double>("inputs");
        both.Set("x", empty);
        both.Set("y.grad", new DenseTensor<double>(y.ShapeArray()));
        foreach (var r in new[] { Module.Run(folder.Config, both, ps, RunOptions.Default).Cast<double>(),
                     Module.Run(folder.Config, both.Cast<float>(), ps.Cast<float>(), RunOptions.Default).Cast<double>() })
        {
            Assert.Equal(empty.ShapeArray(), r.Get("x.grad").ShapeArray());
            Assert.All(r.Get("weight.grad").Data, v => Assert.Equal(0.0, v));
        }
    }
}
