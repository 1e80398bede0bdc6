using Attention.Reference.Cases;
using Attention.Reference.IO;
using Attention.Reference.Tensors;
using Attention.Reference.Tests.Support;

namespace Attention.Reference.Tests.Networks;

/// <summary>Whole networks against PyTorch 1.13 (float64, the real timm code): outputs and every module's output.</summary>
public class NetworkCaseTests
{
    public static TheoryData<string> Cases => new(Directory.GetDirectories(NetworkTestData.Folder)
        .Select(p => Path.GetFileName(p)!).Order(StringComparer.Ordinal));

    [Theory]
    [MemberData(nameof(Cases))]
    public void Outputs_and_module_dump_agree_with_pytorch(string name)
    {
        var folder = CaseFolder.Open(NetworkTestData.CasePath(name));
        var (outputs, dump) = NetworkTestData.RunWithDump(folder);
        var failures = NetworkTestData.CheckRule(folder.ReadExpected()!, outputs);
        var (expectedDump, order) = folder.ReadExpectedDump()!.Value;
        failures.AddRange(NetworkTestData.CheckRule(expectedDump, dump).Select(f => "dump " + f));
        Assert.True(failures.Count == 0, $"{name}:\n" + string.Join("\n", failures));
        // Every expected output is produced, and the dump holds the same modules in the same call order.
        Assert.Equal(folder.ReadExpected()!.Select(t => t.Name).Order(), outputs.Names.Order());
        Assert.Equal(order, string.Join(",", dump.Names));
    }

    [Fact]
    public void The_check_rule_catches_a_small_error_in_one_module()
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
    public void A_training_network_is_bitwise_identical_for_one_and_two_threads()
    {
        var folder = CaseFolder.Open(NetworkTestData.CasePath("02_seresnext50_32x4d_train"));
        Bitwise.AssertSameForThreadCounts(() => folder.Run<double>(), 2);
    }

    [Fact]
    public void Float32_fast_path_follows_the_oracle()
    {
        var folder = CaseFolder.Open(NetworkTestData.CasePath("01_seresnet50_eval"));
        var oracle = folder.Run<double>().Get("y");
        var fast = folder.Run<float>().Get("y");
        double scale = oracle.Data.Max(Math.Abs), worst = 0;
        for (int i = 0; i < oracle.Length; i++) worst = Math.Max(worst, Math.Abs(fast.Data[i] - oracle.Data[i]));
        Assert.True(worst <= 1e-4 * scale, $"max |Δy| {worst:E3} > 1e-4 · {scale:E3}");
    }
}
