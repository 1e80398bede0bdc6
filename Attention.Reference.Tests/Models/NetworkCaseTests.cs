using Attention.Reference.Cases;
using Attention.Reference.Models;
using Attention.Reference.IO;
using Attention.Reference.Layers;

namespace Attention.Reference.Tests.Models;

/// <summary>Whole networks against PyTorch 1.13 (float64, the real timm code): outputs and every module's output.</summary>
public class NetworkCaseTests
{
    public static TheoryData<string> Cases => new(Directory.GetDirectories(NetworkTestData.Folder)
        .Select(p => Path.GetFileName(p)!).Order(StringComparer.Ordinal));

    /// <summary>
    /// Every case, every output and every module within the pack's rule at rtol 1e-10. The gradients use libtorch's
    /// conventions (the float32-rounded 1/6 in nn.Hardsigmoid's backward, which only MobileNetV3 has): with them
    /// nothing else differs, which the next test pins down for the exact oracle.
    /// </summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void OutputsAndModuleDumpAgreeWithPytorch(string name)
    {
        var folder = CaseFolder.Open(NetworkTestData.CasePath(name));
        var (outputs, dump) = NetworkTestData.RunWithDump(folder, GradConventions.Libtorch);
        var failures = NetworkTestData.CheckRule(folder.ReadExpected()!, outputs);
        var (expectedDump, order) = folder.ReadExpectedDump()!.Value;
        failures.AddRange(NetworkTestData.CheckRule(expectedDump, dump).Select(f => "dump " + f));
        Assert.True(failures.Count == 0, $"{name}:\n" + string.Join("\n", failures));
        // Every expected output is produced, and the dump holds the same modules in the same call order.
        Assert.Equal(folder.ReadExpected()!.Select(t => t.Name).Order(), outputs.Names.Order());
        Assert.Equal(order, string.Join(",", dump.Names));
    }

    /// <summary>
    /// The exact oracle (1/6 rounded once in float64) against PyTorch on the networks with nn.Hardsigmoid: the
    /// forward (y, every module, the running statistics) is bitwise the libtorch-convention run and agrees with
    /// PyTorch; the gradients differ from PyTorch's by the constant's 2.98e-8 relative error propagated through the SE
    /// gates, and on the networks without nn.Hardsigmoid the two conventions are bitwise identical.
    /// </summary>
    [Theory]
    [InlineData("04_mobilenet_v3_large_eval", true)]
    [InlineData("05_mobilenet_v3_small_train", true)]
    [InlineData("08_efficientnet_eval", false)]
    public void ExactHardsigmoidGradientsDifferFromLibtorchOnlyThroughItsRoundedSixth(string name, bool hasHardsigmoid)
    {
        var folder = CaseFolder.Open(NetworkTestData.CasePath(name));
        var (exact, exactDump) = NetworkTestData.RunWithDump(folder);
        var (torch, torchDump) = NetworkTestData.RunWithDump(folder, GradConventions.Libtorch);
        foreach (var (n, t) in exactDump) Bitwise.AssertIdentical(torchDump.Get(n), t, "dump " + n);
        bool anyDifferent = false;
        // Tensors that are zero in exact arithmetic (a bias feeding a training-mode BatchNorm) hold rounding noise:
        // judge them against the noise floor of the whole set, as the pack's rule does.
        double floor = 64 * Math.Pow(2, -52) * torch.SelectMany(kv => kv.Value.Data).Select(Math.Abs).Max();
        foreach (var (n, t) in exact)
        {
            var other = torch.Get(n);
            if (!n.EndsWith(".grad", StringComparison.Ordinal)) { Bitwise.AssertIdentical(other, t, n); continue; }
            double scale = other.Data.Select(Math.Abs).DefaultIfEmpty(0).Max(), worst = 0;
            for (int i = 0; i < t.Length; i++) worst = Math.Max(worst, Math.Abs(t.Data[i] - other.Data[i]));
            anyDifferent |= worst > 0;
            // The constant is 2.98e-8 relative too large; through stacked SE gates and BatchNorm the effect on a tensor
            // reaches 3.3e-8 of its scale (measured, 04 and 05). A bound of 1e-7 leaves room for that and still
            // catches any other disagreement: with libtorch's constant everything agrees with PyTorch at 1e-10.
            Assert.True(worst <= 1e-7 * scale + floor, $"{n}: |exact − libtorch| = {worst:E3} > 1e-7 · {scale:E3} + {floor:E2}");
        }
        Assert.Equal(hasHardsigmoid, anyDifferent);
        Assert.Empty(NetworkTestData.CheckRule(folder.ReadExpected()!.Where(e => !e.Name.EndsWith(".grad", StringComparison.Ordinal)).ToList(), exact));
    }

    [Fact]
    public void TheCheckRuleCatchesASmallErrorInOneModule()
    {
        var folder = CaseFolder.Open(NetworkTestData.CasePath("01_seresnet50_eval"));
        var (_, dump) = NetworkTestData.RunWithDump(folder);
        var (expectedDump, order) = folder.ReadExpectedDump()!.Value;
        var gate = dump.Get("layer3.0.se.gate");
        gate.Data[5] *= 1 + 1e-8;
        var failures = NetworkTestData.CheckRule(expectedDump, dump);
        Assert.Single(failures);
        Assert.StartsWith("layer3.0.se.gate:", failures[0]);
        var stored = dump.Select(kv => new StoredTensor(kv.Key, StoredDType.F64, kv.Value.ShapeArray(), kv.Value.Data)).ToList();
        var first = DumpComparer.FirstDivergence(TensorComparer.CompareSets(expectedDump, stored, 1e-10), order);
        Assert.Equal("layer3.0.se.gate", first!.Name);
    }

    [Fact]
    public void ATrainingNetworkIsBitwiseIdenticalForOneAndTwoThreads()
    {
        var folder = CaseFolder.Open(NetworkTestData.CasePath("02_seresnext50_32x4d_train"));
        Bitwise.AssertSameForThreadCounts(() => folder.Run<double>(), 2);
    }

    /// <summary>The promise at full size: SE-ResNet-50, 224x224, float64 forward + backward, 1 and 2 threads.</summary>
    [Fact]
    public void FullSizeSeresnet50IsBitwiseIdenticalForOneAndTwoThreads()
    {
        var net = Reference.Models.ModelZoo.Create<double>("seresnet50");
        net.LoadStateDict(Reference.Models.RandomWeights.StateDict(net, 3));
        var inputs = Reference.Models.RandomWeights.Inputs(1, 224, 1000, 4);
        Bitwise.AssertSameForThreadCounts(() => net.Run(inputs.Get("x"), inputs.Get("y.grad"), false).Tensors, 2);
    }

    [Fact]
    public void Float32FastPathFollowsTheOracle()
    {
        var folder = CaseFolder.Open(NetworkTestData.CasePath("01_seresnet50_eval"));
        var oracle = folder.Run<double>().Get("y");
        var fast = folder.Run<float>().Get("y");
        double scale = oracle.Data.Max(Math.Abs), worst = 0;
        for (int i = 0; i < oracle.Length; i++) worst = Math.Max(worst, Math.Abs(fast.Data[i] - oracle.Data[i]));
        Assert.True(worst <= 1e-4 * scale, $"max |Δy| {worst:E3} > 1e-4 · {scale:E3}");
    }
}
