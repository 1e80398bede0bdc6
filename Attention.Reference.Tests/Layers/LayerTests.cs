using Attention.Reference.Layers;
using FsCheck.Fluent;
using MathNet.Numerics.LinearAlgebra;

using Attention.Reference.Tests.Models;

namespace Attention.Reference.Tests.Layers;

/// <summary>The new leaf layers against their definitions: MaxPool2d (PyTorch's sizes, ties, NaN, gradient), Linear.</summary>
public class LayerTests
{
    private static DenseTensor<double> Run(Layer<double> layer, DenseTensor<double> x, DenseTensor<double>? dy, out DenseTensor<double>? dx)
    {
        var pass = new Pass<double>();
        var y = layer.Forward(x, pass);
        dx = dy is null ? null : layer.Backward(dy, pass);
        return y;
    }

    [Theory]
    // (length, kernel, stride, padding, dilation, ceil) -> PyTorch's output size (torch.nn.MaxPool2d on 1.13).
    [InlineData(16, 3, 2, 0, 1, true, 8)]
    [InlineData(16, 3, 2, 0, 1, false, 7)]
    [InlineData(33, 3, 2, 0, 1, true, 16)]
    [InlineData(32, 3, 2, 1, 1, false, 16)]
    [InlineData(5, 2, 2, 1, 1, true, 3)]
    [InlineData(6, 3, 3, 1, 1, true, 3)]
    [InlineData(10, 3, 2, 1, 2, false, 4)]
    [InlineData(7, 3, 1, 0, 1, false, 5)]
    public void MaxPoolOutputSizeFollowsPytorch(int length, int k, int s, int p, int d, bool ceil, int expected) =>
        Assert.Equal(expected, new MaxPool2d<double>(k, s, p, d, ceil).OutputSize(length));

    [Fact]
    public void MaxPoolTiesKeepTheFirstIndexNanWinsAndGradientsAccumulate() // values as PyTorch 1.13 gives them
    {
        // One 1x1x3x4 plane; kernel 2, stride 1: overlapping windows.
        var x = new DenseTensor<double>([1, 5, 5, 0, 2, 5, 1, 3, 0, 4, 4, double.NaN], 1, 1, 3, 4);
        var dy = new DenseTensor<double>([1, 10, 100, 1000, 10000, 100000], 1, 1, 2, 3);
        var y = Run(new MaxPool2d<double>(2, 1), x, dy, out var dx);
        Assert.Equal([5, 5, 5, 5, 5, double.NaN], y.Data);
        // Window (0,0): 1 5 / 2 5 → first 5 at (0,1). (0,1): 5 5 / 5 1 → (0,1). (0,2): 5 0 / 1 3 → (0,2).
        // (1,0): 2 5 / 0 4 → (1,1). (1,1): 5 1 / 4 4 → (1,1). (1,2): 1 3 / 4 NaN → the NaN at (2,3).
        Assert.Equal([0, 1 + 10, 100, 0, 0, 1000 + 10000, 0, 0, 0, 0, 0, 100000], dx!.Data);
    }

    [Fact]
    public void MaxPoolPaddingNeverWinsAndCeilModeWindowsAreClipped()
    {
        var x = new DenseTensor<double>([-3, -1, -2, -5, -4, -6, -7, -8, -9], 1, 1, 3, 3);
        var y = Run(new MaxPool2d<double>(2, 2, 1, 1, ceilMode: true), x, new DenseTensor<double>(1, 1, 2, 2), out _);
        Assert.Equal([-3, -1, -5, -4], y.Data); // PyTorch 1.13: [[-3, -1], [-5, -4]]
    }

    [FsCheck.Xunit.Property(MaxTest = 200)]
    public FsCheck.Property MaxPool_values_only_path_equals_the_argmax_loop_bitwise() => FsCheck.Fluent.Prop.ForAll(
        FsCheck.Fluent.Gen.Choose(0, int.MaxValue).ToArbitrary(), seed =>
    {
        // Random geometry (kernel 1–4, stride 1–3, padding ≤ k/2, dilation 1–2, ceil mode) on planes 1–40 wide, with
        // ties, ±0, ±∞ and NaNs of different payloads: the inference path (values only, rows of windows) must give
        // the scalar argmax loop's exact bits.
        var rng = new Random(seed);
        int k = rng.Next(1, 5), s = rng.Next(1, 4), p = rng.Next(0, k / 2 + 1), d = rng.Next(1, 3);
        bool ceil = rng.Next(2) == 0;
        int h = rng.Next(1, 41), w = rng.Next(1, 41);
        var layer = new MaxPool2d<float>(k, s, p, d, ceil);
        if ((long)h + 2 * p < (long)d * (k - 1) + 1 || (long)w + 2 * p < (long)d * (k - 1) + 1) return;
        int ho = layer.OutputSize(h), wo = layer.OutputSize(w);
        float[] specials = [0f, -0f, 1f, float.PositiveInfinity, float.NegativeInfinity, BitConverter.Int32BitsToSingle(0x7fc00001),
            BitConverter.Int32BitsToSingle(unchecked((int)0xffc00002)), 2f];
        var x = new DenseTensor<float>(2, 1, h, w);
        for (int i = 0; i < x.Length; i++)
            x.Data[i] = rng.Next(4) == 0 ? specials[rng.Next(specials.Length)] : (float)Math.Round(rng.NextDouble() * 4 - 2, 1);
        var expected = layer.Forward(x, new Pass<float>());
        var actual = new float[ho * wo];
        for (int plane = 0; plane < 2; plane++)
        {
            MaxPoolRows.Plane<float>(x.Data.AsSpan(plane * h * w, h * w), actual, h, w, ho, wo, k, s, p, d);
            for (int i = 0; i < actual.Length; i++)
                Assert.True(BitConverter.SingleToInt32Bits(expected.Data[plane * ho * wo + i]) == BitConverter.SingleToInt32Bits(actual[i]),
                    $"k={k} s={s} p={p} d={d} ceil={ceil} {h}x{w}: y[{plane}, {i}] {actual[i]} vs {expected.Data[plane * ho * wo + i]}");
        }
    });

    [Fact]
    public void LinearIsTheMatrixProductAndItsAdjoint()
    {
        var rng = new Random(3);
        var layer = new Linear<double>(5, 3, bias: true);
        foreach (var (_, p) in layer.NamedTensors()) for (int i = 0; i < p.Value.Length; i++) p.Value.Data[i] = rng.NextDouble() - 0.5;
        var x = new DenseTensor<double>(4, 5);
        var dy = new DenseTensor<double>(4, 3);
        for (int i = 0; i < x.Length; i++) x.Data[i] = rng.NextDouble() - 0.5;
        for (int i = 0; i < dy.Length; i++) dy.Data[i] = rng.NextDouble() - 0.5;
        var y = Run(layer, x, dy, out var dx);

        var W = Matrix<double>.Build.Dense(3, 5, (o, i) => layer.Weight.Value[o, i]);
        var X = Matrix<double>.Build.Dense(4, 5, (n, i) => x[n, i]);
        var G = Matrix<double>.Build.Dense(4, 3, (n, o) => dy[n, o]);
        var Y = X * W.Transpose();
        for (int n = 0; n < 4; n++)
            for (int o = 0; o < 3; o++) Assert.Equal(Y[n, o] + layer.Bias!.Value.Data[o], y[n, o], 1e-14);
        var DX = G * W;
        var DW = G.Transpose() * X;
        for (int n = 0; n < 4; n++) for (int i = 0; i < 5; i++) Assert.Equal(DX[n, i], dx![n, i], 1e-14);
        for (int o = 0; o < 3; o++) for (int i = 0; i < 5; i++) Assert.Equal(DW[o, i], layer.Weight.Grad![o, i], 1e-14);
        for (int o = 0; o < 3; o++) Assert.Equal(G.Column(o).Sum(), layer.Bias!.Grad!.Data[o], 1e-14);
    }

    [Fact]
    public void LinearInConvFormActsPerPositionAndAccumulatesOverRepeatedCalls()
    {
        var layer = new Linear<double>(2, 1, bias: false, convForm: true);
        layer.Weight.Value.Data[0] = 2;
        layer.Weight.Value.Data[1] = -1;
        Assert.Equal([1, 2, 1, 1], layer.Weight.Value.ShapeArray());
        var x = new DenseTensor<double>([1, 2, 3, 10, 20, 30], 1, 2, 1, 3);
        var pass = new Pass<double>();
        var y1 = layer.Forward(x, pass);
        var y2 = layer.Forward(x, pass);
        Assert.Equal([-8, -16, -24], y1.Data);
        layer.Backward(new DenseTensor<double>([1, 0, 0], 1, 1, 1, 3), pass);
        layer.Backward(new DenseTensor<double>([0, 0, 1], 1, 1, 1, 3), pass);
        // dW = Σ over both calls: [1 + 3, 10 + 30].
        Assert.Equal([4, 40], layer.Weight.Grad!.Data);
        Assert.Equal(y1.Data, y2.Data);
        Assert.Throws<InvalidOperationException>(() => layer.Backward(new DenseTensor<double>(1, 1, 1, 3), pass));
    }
}

/// <summary>The shape plan: every module's shape known before any compute, and refusals before any allocation.</summary>
public sealed class ShapePlanTests : IDisposable
{
    private readonly string _temp = Directory.CreateTempSubdirectory("attention-plan-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    public static TheoryData<string> Cases => new(Directory.GetDirectories(NetworkTestData.Folder).Select(p => Path.GetFileName(p)!).Order());

    [Theory]
    [MemberData(nameof(Cases))]
    public void ThePlanNamesEveryDumpedModuleWithItsShapeInCallOrder(string name)
    {
        var folder = Reference.Cases.CaseFolder.Open(NetworkTestData.CasePath(name));
        var net = Reference.Models.ModelZoo.Create<double>(folder.Config);
        var x = folder.ReadInputs<double>().Get("x");
        var plan = new ShapePlan();
        net.Root.InferShape(x.ShapeArray(), plan);
        var (dump, order) = folder.ReadExpectedDump()!.Value;
        Assert.Equal(order!.Split(','), plan.Named.Select(n => n.Name));
        var shapes = dump.ToDictionary(t => t.Name, t => t.Shape);
        foreach (var (n, shape) in plan.Named) Assert.Equal(shapes[n], shape);
    }

    private static (int Code, string Out, string Err) Run(params string[] args) => CliHarness.Run(args);

    private string CopyCase(string from) => CliHarness.CopyFolder(from, _temp);

    [Fact]
    public void AHugePaddingIsRefusedBeforeAnyCompute()
    {
        string folder = CopyCase(Support.GoldenPack.CasePath("conv_3x3_p1_bias"));
        string json = File.ReadAllText(Path.Combine(folder, "case.json"));
        File.WriteAllText(Path.Combine(folder, "case.json"), System.Text.RegularExpressions.Regex.Replace(json, "\"padding\":\\s*\\d+", "\"padding\": 3000"));
        var r = Run("run", folder, "--out", Path.Combine(_temp, "o.safetensors"));
        Assert.Equal(2, r.Code);
        Assert.Contains("Tensor 'y.grad' has shape", r.Err);

        File.WriteAllText(Path.Combine(folder, "case.json"), System.Text.RegularExpressions.Regex.Replace(json, "\"padding\":\\s*\\d+", "\"padding\": 1100000000"));
        r = Run("run", folder, "--out", Path.Combine(_temp, "o.safetensors"));
        Assert.Equal(2, r.Code);
        Assert.Contains("is too large", r.Err);
        Assert.DoesNotContain("-", r.Err.Split("shape").Skip(1).FirstOrDefault() ?? "");
        Assert.False(File.Exists(Path.Combine(_temp, "o.safetensors")));
    }

    [Fact]
    public void ARunOverTheMemoryCapIsRefusedNamingBothSizes()
    {
        string folder = CopyCase(NetworkTestData.CasePath("03_resnet50_eval"));
        var r = Run("run", folder, "--max-memory", "64K");
        Assert.Equal(2, r.Code);
        Assert.Matches(@"plans [\d.]+ MB for \d+ module outputs of x \[1, 3, 40, 40\], over the 65536 bytes limit", r.Err);
        Assert.False(File.Exists(Path.Combine(folder, "actual.safetensors")));
        Assert.Equal(2, Run("run", folder, "--max-memory", "lots").Code);
        Assert.Equal(0, Run("run", folder, "--max-memory", "1G").Code);
    }
}
