using Attention.Reference.Cases;
using Attention.Reference.Models;
using Attention.Reference.Layers;
using Attention.Reference.Ops;
using Attention.Reference.Kernels.Conv;
using Attention.Reference.Tests.Layers.Se;

namespace Attention.Reference.Tests.Models;

/// <summary>The SE-ResNet block: gradcheck of every placement, the block against a composition of its parts, bad input.</summary>
public sealed class SeResNetBlockTests(ITestOutputHelper output)
{
    private static readonly ModelFactory Module = ModelZoo.Get("se_resnet_block");

    public static TheoryData<string> CaseNames()
    {
        var data = new TheoryData<string>();
        foreach (var c in Module.Generate(5)) data.Add(c.Name);
        return data;
    }

    /// <summary>The cases whose SE has a sigmoid gate with biases (a saturating fc2.bias makes it the identity).</summary>
    public static TheoryData<string> SigmoidBiasCaseNames()
    {
        var data = new TheoryData<string>();
        foreach (var c in Module.Generate(5))
        {
            var o = SeResNetBlockFactory.ParseOptions(c.Config);
            if (o.Se.Gate == SeGate.Sigmoid && o.Se.Bias) data.Add(c.Name);
        }
        return data;
    }

    private static GeneratedCase Case(string name) => Module.Generate(5).Single(c => c.Name == name);

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void GradCheck(string name)
    {
        var c = Case(name);
        int n = Support.GradCheck.CheckCase(Module, c, maxElementsPerTensor: 120);
        output.WriteLine($"{name}: {n} derivatives checked");
        var r = Module.Run(c.Config, c.Inputs, c.Parameters, RunOptions.Default);
        // Every learnable parameter has a gradient; running statistics have none.
        foreach (var p in c.Parameters.Names)
            Assert.Equal(!p.Contains("running_", StringComparison.Ordinal), r.Contains(p + ".grad"));
    }

    /// <summary>y equals the composition of conv2d, BatchNorm2d (eval), relu and the SE module written out here, bit for bit.</summary>
    [Theory]
    [MemberData(nameof(CaseNames))]
    public void ForwardIsTheCompositionOfItsParts(string name)
    {
        var c = Case(name);
        var o = SeResNetBlockFactory.ParseOptions(c.Config);
        var ps = c.Parameters;
        var x = c.Inputs.Get("x");
        var se = new SeParameters<double>(o.Se, ps.Get("se.fc1.weight"), ps.TryGet("se.fc1.bias"), ps.Get("se.fc2.weight"), ps.TryGet("se.fc2.bias"));
        var p = (Conv1: ps.Get("conv1.weight"), Conv2: ps.Get("conv2.weight"), Conv3: ps.Get("conv3.weight"),
            Bn1: "bn1", Bn2: "bn2", Bn3: "bn3", DownConv: ps.TryGet("downsample.0.weight"), DownBn: "downsample.1");

        DenseTensor<double> Se(DenseTensor<double> v) => SeRun.Forward(o.Se, v, se).Y;
        DenseTensor<double> Bn(DenseTensor<double> v, string b) => BatchNorm2d.ForwardEval(v, ps.Get(b + ".weight"), ps.Get(b + ".bias"),
            ps.Get(b + ".running_mean"), ps.Get(b + ".running_var"), o.Eps);
        DenseTensor<double> Relu(DenseTensor<double> v) => Map(v, a => Math.Max(a, 0));
        DenseTensor<double> Add(DenseTensor<double> a, DenseTensor<double> b)
        {
            var s = a.ZerosLike();
            for (int i = 0; i < s.Length; i++) s.Data[i] = a.Data[i] + b.Data[i];
            return s;
        }
        bool strideIn1x1 = c.Config.Has("stride_in_1x1") && c.Config.GetBool("stride_in_1x1");
        var g1 = Conv2dGeometry.Square(o.Inplanes, o.Planes, 1, strideIn1x1 ? o.Stride : 1);
        var g2 = Conv2dGeometry.Square(o.Planes, o.Planes, 3, strideIn1x1 ? 1 : o.Stride, 1);
        var g3 = Conv2dGeometry.Square(o.Planes, o.Planes * o.Expansion, 1);
        DenseTensor<double> F(DenseTensor<double> u) =>
            Bn(Conv2d.Forward(Relu(Bn(Conv2d.Forward(Relu(Bn(Conv2d.Forward(u, p.Conv1, null, g1), p.Bn1)), p.Conv2, null, g2), p.Bn2)), p.Conv3, null, g3), p.Bn3);
        var shortcut = o.HasDownsample
            ? Bn(Conv2d.Forward(x, p.DownConv!, null, Conv2dGeometry.Square(o.Inplanes, o.Planes * o.Expansion, 1, o.Stride)), p.DownBn)
            : x;
        var expected = o.Placement switch
        {
            SePlacement.Standard => Relu(Add(Se(F(x)), shortcut)),
            SePlacement.Pre => Relu(Add(F(Se(x)), shortcut)),
            SePlacement.Post => Se(Relu(Add(F(x), shortcut))),
            SePlacement.Identity => Relu(Add(F(x), Se(shortcut))),
            _ => throw new InvalidOperationException(),
        };
        var y = Module.Run(c.Config, c.Inputs, c.Parameters, RunOptions.Default).Get("y");
        Bitwise.AssertIdentical(expected, y, $"{name} y");
    }

    /// <summary>The block's SE gradients equal the SE module's own backward on the SE's input and upstream gradient (wiring check).</summary>
    [Theory]
    [MemberData(nameof(CaseNames))]
    public void SeGradientsAreTheSeModulesOnItsOwnInputs(string name)
    {
        var c = Case(name);
        var o = SeResNetBlockFactory.ParseOptions(c.Config);
        var trace = new TraceLog();
        var r = Module.Run(c.Config, c.Inputs, c.Parameters, new RunOptions { Trace = trace });
        DenseTensor<double> Step(string n) => trace.Steps.Single(s => s.Name == n).Value;
        var (seIn, seUp) = o.Placement switch
        {
            SePlacement.Standard => (Step("f0"), Step("dv")),
            SePlacement.Pre => (c.Inputs.Get("x"), Step("du")),
            SePlacement.Post => (Step("o"), c.Inputs.Get("y.grad")),
            SePlacement.Identity => (Step("sc"), Step("dv")),
            _ => throw new InvalidOperationException(),
        };
        var seCase = new TensorSet<double>("inputs");
        seCase.Set("x", seIn);
        seCase.Set("y.grad", seUp);
        var seParams = new TensorSet<double>("params");
        var seNames = c.Parameters.Names.Where(n => n.StartsWith("se.", StringComparison.Ordinal)).Select(n => n[3..]).ToList();
        Assert.Equal(o.Se.Bias ? 4 : 2, seNames.Count);
        foreach (var n in seNames) seParams.Set(n, c.Parameters.Get("se." + n));
        var seConfig = CaseConfig.Create("se", ("channels", o.Se.Channels), ("hidden", o.Se.Hidden), ("bias", o.Se.Bias),
            ("gate", SeOptions.NameOf(o.Se.Gate)), ("pool", SeOptions.NameOf(o.Se.Pool)));
        var seOut = ModelZoo.Get("se").Run(seConfig, seCase, seParams, RunOptions.Default);
        foreach (var n in seNames)
            Bitwise.AssertIdentical(seOut.Get(n + ".grad"), r.Get("se." + n + ".grad"), $"{name} se.{n}.grad");
    }

    /// <summary>
    /// With a saturated gate (fc2.bias = 1e3: σ gives exactly 1 in float64) the SE module is the identity and
    /// σ'(e) = (1 − s)s = 0, so every placement is the plain ResNet bottleneck: y and x.grad agree bit for bit with the
    /// standard placement's (equally saturated), and every SE gradient is exactly 0.
    /// </summary>
    [Theory]
    [MemberData(nameof(SigmoidBiasCaseNames))]
    public void SaturatedGateGivesThePlainBottleneck(string name)
    {
        var c = Case(name);
        var o = SeResNetBlockFactory.ParseOptions(c.Config);
        Assert.True(o.Se.Gate == SeGate.Sigmoid && o.Se.Bias, "the rows are the cases with a biased sigmoid gate");
        var ps = c.Parameters.Clone();
        Array.Fill(ps.Get("se.fc2.bias").Data, 1e3);
        var r = Module.Run(c.Config, c.Inputs, ps, RunOptions.Default);
        var reference = c.Config.ToJson().Replace("\"placement\": \"" + c.Config.GetString("placement") + "\"", "\"placement\": \"standard\"");
        var standard = Module.Run(CaseConfig.Parse(reference), c.Inputs, WithSeFor(ps, o, SeResNetBlockFactory.ParseOptions(CaseConfig.Parse(reference))), RunOptions.Default);
        Bitwise.AssertIdentical(standard.Get("y"), r.Get("y"), name + " y");
        Bitwise.AssertIdentical(standard.Get("x.grad"), r.Get("x.grad"), name + " x.grad");
        foreach (var n in new[] { "se.fc1.weight.grad", "se.fc1.bias.grad", "se.fc2.weight.grad", "se.fc2.bias.grad" })
            Assert.All(r.Get(n).Data, v => Assert.Equal(0.0, Math.Abs(v)));
    }

    /// <summary>The parameters with the SE weights reshaped for another placement's channel count (all saturated).</summary>
    private static TensorSet<double> WithSeFor(TensorSet<double> ps, SeResNetBlockOptions from, SeResNetBlockOptions to)
    {
        if (from.Se.Channels == to.Se.Channels && from.Se.Hidden == to.Se.Hidden) return ps;
        var copy = ps.Clone();
        int c = to.Se.Channels, h = to.Se.Hidden;
        copy.Set("se.fc1.weight", new DenseTensor<double>(h, c, 1, 1));
        copy.Set("se.fc1.bias", new DenseTensor<double>(h));
        copy.Set("se.fc2.weight", new DenseTensor<double>(c, h, 1, 1));
        var b2 = new DenseTensor<double>(c);
        Array.Fill(b2.Data, 1e3);
        copy.Set("se.fc2.bias", b2);
        return copy;
    }

    [Fact]
    public void InputsAreNotModified()
    {
        foreach (var c in Module.Generate(5))
        {
            var inputs = c.Inputs.Clone();
            var ps = c.Parameters.Clone();
            Module.Run(c.Config, inputs, ps, RunOptions.Default);
            Module.Run(c.Config, inputs.Cast<float>(), ps.Cast<float>(), RunOptions.Default);
            foreach (var (name, t) in c.Inputs) Bitwise.AssertIdentical(t, inputs.Get(name), c.Name + " " + name);
            foreach (var (name, t) in c.Parameters) Bitwise.AssertIdentical(t, ps.Get(name), c.Name + " " + name);
        }
    }

    [Fact]
    public void BitwiseIdenticalForAnyThreadCount()
    {
        foreach (var c in Module.Generate(5).Where(g => g.Name.EndsWith("_s2", StringComparison.Ordinal)))
            Bitwise.AssertSameForThreadCounts(() => Module.Run(c.Config, c.Inputs, c.Parameters, RunOptions.Default), 2, 3);
    }

    [Fact]
    public void Float32MatchesFloat64()
    {
        foreach (var c in Module.Generate(5))
        {
            var r64 = Module.Run(c.Config, c.Inputs, c.Parameters, RunOptions.Default);
            var r32 = Module.Run(c.Config, c.Inputs.Cast<float>(), c.Parameters.Cast<float>(), RunOptions.Default);
            Assert.Equal(r64.Names, r32.Names);
            foreach (var (n, t) in r64)
            {
                double err = SeTestData.ScaledError(r32.Get(n), t);
                Assert.True(err <= 1e-5, $"{c.Name} {n}: scaled error {err:E2}");
            }
        }
    }

    [Fact]
    public void StrideIn1x1MovesTheStrideToConv1()
    {
        var c = Case("se_resnet_block_standard_down_s2");
        var cfg = CaseConfig.Parse(c.Config.ToJson().Replace("\"reduction\"", "\"stride_in_1x1\": true, \"reduction\""));
        var o = SeResNetBlockFactory.ParseOptions(cfg);
        Assert.Equal((2, 2), o.Conv1.Stride);
        Assert.Equal((1, 1), o.Conv2.Stride);
        Support.GradCheck.CheckCase(Module, cfg, c.Inputs, c.Parameters, maxElementsPerTensor: 40);
    }

    [Theory]
    [InlineData("\"placement\": \"middle\"", "unknown placement 'middle'")]
    [InlineData("\"se_hidden\": 2", "not both")]
    [InlineData("\"planes\": 0", "'planes' must be at least 1")]
    [InlineData("\"groups\": 2", "unknown key 'groups'")]
    public void BadConfig(string edit, string message)
    {
        var c = Case("se_resnet_block_standard");
        string key = edit.Split(':')[0];
        string json = c.Config.ToJson();
        json = json.Contains(key, StringComparison.Ordinal)
            ? System.Text.RegularExpressions.Regex.Replace(json, key + @":\s*[^,\n}]+", edit)
            : json.Replace("{", "{" + edit + ",");
        var e = Assert.Throws<CaseFormatException>(() => Module.Run(CaseConfig.Parse(json), c.Inputs, c.Parameters, RunOptions.Default));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void BadTensorsAreNamed()
    {
        var c = Case("se_resnet_block_standard_down_s2");
        var ps = c.Parameters.Clone();
        ps.Set("conv2.weight", new DenseTensor<double>(4, 4, 1, 1));
        Assert.Equal("conv2.weight", Assert.Throws<ShapeMismatchException>(() => Module.Run(c.Config, c.Inputs, ps, RunOptions.Default)).TensorName);

        ps = c.Parameters.Clone();
        ps.Set("bn3.running_var", new DenseTensor<double>(3));
        Assert.Equal("bn3.running_var", Assert.Throws<ShapeMismatchException>(() => Module.Run(c.Config, c.Inputs, ps, RunOptions.Default)).TensorName);

        ps = c.Parameters.Clone();
        ps.Set("se.fc1.weight", new DenseTensor<double>(2, 7, 1, 1));
        Assert.Equal("se.fc1.weight", Assert.Throws<ShapeMismatchException>(() => Module.Run(c.Config, c.Inputs, ps, RunOptions.Default)).TensorName);

        ps = c.Parameters.Clone();
        ps.Set("layer2.weight", new DenseTensor<double>(1));
        Assert.Contains("layer2.weight", Assert.Throws<InvalidDataException>(() => Module.Run(c.Config, c.Inputs, ps, RunOptions.Default)).Message);

        var noDown = Case("se_resnet_block_standard");
        ps = noDown.Parameters.Clone();
        ps.Set("downsample.0.weight", new DenseTensor<double>(8, 8, 1, 1));
        Assert.Contains("downsample.0.weight", Assert.Throws<InvalidDataException>(() => Module.Run(noDown.Config, noDown.Inputs, ps, RunOptions.Default)).Message);

        var ins = c.Inputs.Clone();
        ins.Set("x", new DenseTensor<double>(2, 5, 6, 5));
        Assert.Equal("x", Assert.Throws<ShapeMismatchException>(() => Module.Run(c.Config, ins, c.Parameters, RunOptions.Default)).TensorName);
    }

    private static DenseTensor<double> Map(DenseTensor<double> v, Func<double, double> f)
    {
        var r = v.ZerosLike();
        for (int i = 0; i < r.Length; i++) r.Data[i] = f(v.Data[i]);
        return r;
    }
}
