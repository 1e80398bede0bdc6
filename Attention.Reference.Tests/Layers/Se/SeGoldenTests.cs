
namespace Attention.Reference.Tests.Layers.Se;

/// <summary>The float64 oracle against libtorch 2.10 on the pack's SE cases (|a − e| ≤ 1e-10·max|e| per element).</summary>
public sealed class SeGoldenTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("se_c32_r8_bias")]
    [InlineData("se_c20_h5_linear_nobias")]
    [InlineData("se_c16_h4_hardsigmoid_maxpool")]
    public void MatchesLibtorch(string caseName)
    {
        var results = GoldenPack.AssertMatches(caseName, 1e-10);
        Assert.Contains(results, r => r.Name == "y");
        Assert.Contains(results, r => r.Name == "x.grad");
        Assert.Contains(results, r => r.Name == "fc1.weight.grad");
        foreach (var r in results) output.WriteLine($"{caseName} {r.Name}: max abs {r.MaxAbsError:E2}, max rel {r.MaxRelError:E2}");
    }

    [Fact]
    public void EverySeCaseOfThePackIsCovered()
    {
        var names = GoldenPack.CaseNames.Where(n => n.StartsWith("se_", StringComparison.Ordinal)).ToArray();
        Assert.Equal(["se_c16_h4_hardsigmoid_maxpool", "se_c20_h5_linear_nobias", "se_c32_r8_bias"], names);
    }
}
