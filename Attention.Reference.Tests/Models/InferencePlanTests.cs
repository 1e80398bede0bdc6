using Attention.Reference.Kernels;
using Attention.Reference.Cases;
using Attention.Reference.Layers;
using Attention.Reference.Models;
using Attention.Reference.Kernels.Conv;

namespace Attention.Reference.Tests.Models;

/// <summary>
/// The compiled float32 inference plan (BatchNorm folded in float64 and rounded once, activations in the conv
/// epilogue, buffers reused) against the float64 oracle on every public network case, in eval mode: max |Δ| ≤ 1e-4 ·
/// max |y| and the same top-1 class for every image; a second forward reproduces the first bit for bit.
/// </summary>
public sealed class InferencePlanTests(ITestOutputHelper log)
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var d in Directory.GetDirectories(Path.Combine(AppContext.BaseDirectory, "testdata", "pytorch-1.13-networks")).Order(StringComparer.Ordinal))
            data.Add(Path.GetFileName(d));
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void PlanLogitsHoldAgainstTheOracle(string name)
    {
        var folder = CaseFolder.Open(Path.Combine(AppContext.BaseDirectory, "testdata", "pytorch-1.13-networks", name));
        var oracle = ModelZoo.Create<double>(folder.Config);
        oracle.LoadStateDict(folder.ReadParameters<double>());
        var x = folder.ReadInputs<double>().Get("x");
        var expected = oracle.Forward(x);

        var net = ModelZoo.Create<float>(folder.Config);
        net.LoadStateDict(folder.ReadParameters<float>());
        var plan = InferencePlan<float>.Compile(net);
        var y = plan.Forward(x.Cast<float>());
        var again = plan.Forward(x.Cast<float>());
        Assert.Equal(y.Data, again.Data);

        double scale = expected.Data.Max(Math.Abs), worst = 0;
        for (int i = 0; i < y.Length; i++) worst = Math.Max(worst, Math.Abs(y.Data[i] - expected.Data[i]));
        log.WriteLine($"{name}: plan float32 max |Δ| / max |y| = {worst / scale:E2}");
        Assert.True(worst <= 1e-4 * scale, $"{name}: max |Δ| {worst:E3}, max |y| {scale:E3}");
        int n = y.Dim(0), k = y.Length / n;
        for (int img = 0; img < n; img++)
        {
            int ArgMax<T>(T[] d) where T : IComparable<T> => Enumerable.Range(img * k, k).Aggregate((a, b) => d[b].CompareTo(d[a]) > 0 ? b : a);
            Assert.Equal(ArgMax(expected.Data), ArgMax(y.Data));
        }

        // The same plan in float64: folding BatchNorm is exact to float64 rounding.
        var net64 = ModelZoo.Create<double>(folder.Config);
        net64.LoadStateDict(folder.ReadParameters<double>());
        var y64 = InferencePlan<double>.Compile(net64).Forward(x);
        double worst64 = expected.Data.Zip(y64.Data).Max(p => Math.Abs(p.First - p.Second));
        Assert.True(worst64 <= 1e-12 * scale, $"{name}: float64 plan max |Δ| {worst64:E3}");
    }

    public static TheoryData<string> ZooModels() => new(ModelZoo.Networks.Select(f => f.Name));

    [Theory]
    [MemberData(nameof(ZooModels))]
    public void SteadyStateForwardAllocatesNothing(string model)
    {
        // Full-size network, random weights, 64 × 64: every convolution, pool, linear layer, attention module and
        // their intermediates reuse their buffers, the parallel loops run struct bodies and no closure is created on
        // the way (a lambda in a forward allocates its captured locals on entry, even on a path that never calls it).
        var oracle = ModelZoo.Create<double>(model);
        var net = ModelZoo.Create<float>(model);
        net.LoadStateDict(RandomWeights.StateDict(oracle, 1).Cast<float>());
        var plan = InferencePlan<float>.Compile(net);
        var x = new DenseTensor<float>(1, 3, 64, 64);
        var rng = new Random(3);
        for (int i = 0; i < x.Length; i++) x.Data[i] = (float)(rng.NextDouble() * 2 - 1);
        var y = plan.Forward(x);
        // Warm on one thread too: when another test holds the worker team, a loop runs on its caller alone, which must
        // then find its own per-thread workspaces grown already.
        Compute.WithThreads(1, () => { plan.Forward(x, y); plan.Forward(x, y); return 0; });
        long allocated = Compute.WithThreads(2, () =>
        {
            for (int i = 0; i < 3; i++) plan.Forward(x, y);
            long before = GC.GetAllocatedBytesForCurrentThread();
            plan.Forward(x, y);
            return GC.GetAllocatedBytesForCurrentThread() - before;
        });
        log.WriteLine($"{model}: {allocated} bytes per warm forward");
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void PassThroughLayersNeverLetABlockOverwriteItsInput()
    {
        // A residual branch that starts with a pass-through (an all-identity Sequential) and then an activation: the
        // activation's input is the block input, which is also the shortcut, so it must not run in place.
        static Layer<double> Block()
        {
            var drop = new Sequential<double>(new Identity<double>("Dropout"), new Identity<double>("DropPath"));
            var act = Act.Relu<double>();
            return new Residual<double>("Block", [("drop", drop), ("act", act)], [drop, act], null, null);
        }
        var tree = new Network<double>("test", new Sequential<double>(Block(), new Flatten<double>(), Act.Relu<double>()));
        var planned = new Network<double>("test", new Sequential<double>(Block(), new Flatten<double>(), Act.Relu<double>()));
        var plan = InferencePlan<double>.Compile(planned);
        var x = new DenseTensor<double>(1, 2, 3, 3);
        for (int i = 0; i < x.Length; i++) x.Data[i] = i % 3 - 1.2;
        var copy = x.Clone();
        var expected = tree.Forward(x);
        var y = plan.Forward(x);
        Assert.Equal(copy.Data, x.Data);
        Assert.Equal(expected.Data, y.Data);
    }

    [Fact]
    public void FoldingIntoAContainerChangesOnlyThatCallSite()
    {
        // (GCT, conv) then BatchNorm folds the BatchNorm into the container's last convolution; the same container run
        // a second time without a BatchNorm after it must stay unfolded.
        static Layer<double> Net()
        {
            var conv = new Conv2dLayer<double>(Attention.Reference.Kernels.Conv.Conv2dGeometry.Square(2, 2, 1), bias: false);
            for (int i = 0; i < conv.Weight.Value.Length; i++) conv.Weight.Value.Data[i] = 0.5 + 0.25 * i;
            var seq = new Sequential<double>(new GctLayer<double>(2), conv);
            var bn = new BatchNorm2dLayer<double>(2);
            for (int c = 0; c < 2; c++) (bn.Weight.Value.Data[c], bn.RunningMean.Value.Data[c], bn.RunningVar.Value.Data[c]) = (3, 0.5, 4);
            return new Sequential<double>("Net", [("seq", seq), ("bn", bn)], [seq, bn, Act.Relu<double>(), seq, new Flatten<double>()]);
        }
        var x = new DenseTensor<double>(1, 2, 3, 3);
        for (int i = 0; i < x.Length; i++) x.Data[i] = i % 4 - 1.3;
        var expected = new Network<double>("test", Net()).Forward(x);
        var y = InferencePlan<double>.Compile(new Network<double>("test", Net())).Forward(x);
        Assert.Equal(expected.Data.Length, y.Data.Length);
        for (int i = 0; i < y.Length; i++) Assert.Equal(expected.Data[i], y.Data[i], 12);
    }

    [Fact]
    public void PlanLogitsAreTheSameBitsOnEveryVectorPathAndThreadCount()
    {
        // SE-ResNet-50: row or grid kernels (chosen by the vector width), output written in place or copied, the SE
        // and residual loops on any width, 1 or 2 threads — one set of bits.
        var oracle = ModelZoo.Create<double>("seresnet50");
        var net = ModelZoo.Create<float>("seresnet50");
        net.LoadStateDict(RandomWeights.StateDict(oracle, 4).Cast<float>());
        var plan = InferencePlan<float>.Compile(net);
        var x = new DenseTensor<float>(1, 3, 64, 64);
        var rng = new Random(8);
        for (int i = 0; i < x.Length; i++) x.Data[i] = (float)(rng.NextDouble() * 2 - 1);
        float[]? first = null;
        foreach (var path in new[] { SimdPath.Vector512, SimdPath.Vector256, SimdPath.Portable })
            foreach (int threads in new[] { 2, 1 })
            {
                var y = SimdWidth.With(path, () => Compute.WithThreads(threads, () => plan.Forward(x)));
                first ??= y.Data;
                Assert.Equal(first, y.Data);
            }
    }
}
