using Attention.Reference.Cases;
using Attention.Reference.Models;

namespace Attention.Reference.Tests.Models;

/// <summary>The SE family as it exists in the wild, and Coordinate Attention under the mbv2_ca naming.</summary>
public class SeFamilyTests
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var m in new[] { "torchvision_se", "timm_se", "coordatt" }.Select(n => ModelZoo.Get(n)))
            foreach (var c in m.Generate(3)) data.Add(c.Name);
        return data;
    }

    private static (ModelFactory Module, GeneratedCase Case) Find(string name)
    {
        foreach (var m in new[] { "torchvision_se", "timm_se", "coordatt" }.Select(n => ModelZoo.Get(n)))
            foreach (var c in m.Generate(3))
                if (c.Name == name) return (m, c);
        throw new InvalidOperationException(name);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Gradcheck(string name)
    {
        var (module, c) = Find(name);
        Assert.True(GradCheck.CheckCase(module, c, maxElementsPerTensor: 60) > 10);
    }

    [Fact]
    public void TorchvisionSeWithReluAndSigmoidIsTheSeModuleBitForBit()
    {
        var (module, c) = Find("torchvision_se_relu_sigmoid");
        var tv = module.Run(c.Config, c.Inputs, c.Parameters, RunOptions.Default);
        var se = ModelZoo.Get("se").Run(CaseConfig.Create("se", ("channels", 16), ("hidden", 8)), c.Inputs, c.Parameters, RunOptions.Default);
        foreach (var (name, t) in se) Bitwise.AssertIdentical(t, tv.Get(name), name);
    }

    [Fact]
    public void CoordattUnderMbv2NamesIsTheCaModule()
    {
        foreach (bool training in new[] { false, true })
        {
            var (module, c) = Find(training ? "coordatt_train" : "coordatt_eval");
            var mine = module.Run(c.Config, c.Inputs, c.Parameters, RunOptions.Default);
            var renamed = new TensorSet<double>("params");
            foreach (var (n, t) in c.Parameters) renamed.Set(n.Replace("conv2.", "conv_h.").Replace("conv3.", "conv_w."), t);
            int inp = c.Config.GetInt("inp"), groups = c.Config.GetInt("groups", 32);
            var ca = ModelZoo.Get("ca").Run(CaseConfig.Create("ca", ("channels", inp), ("mip", Math.Max(8, inp / groups)), ("training", training)),
                c.Inputs, renamed, RunOptions.Default);
            // Tensors that are zero in exact arithmetic (conv1.bias.grad under a training-mode BatchNorm) hold rounding
            // noise: the floor is the set's, as the comparer's rule.
            double floor = 64 * Math.Pow(2, -52) * ca.SelectMany(kv => kv.Value.Data).Select(Math.Abs).Max();
            foreach (var (n, t) in ca)
            {
                var other = mine.Get(n.Replace("conv_h.", "conv2.").Replace("conv_w.", "conv3."));
                double scale = t.Data.Select(Math.Abs).DefaultIfEmpty(0).Max();
                for (int i = 0; i < t.Length; i++) Assert.True(Math.Abs(t.Data[i] - other.Data[i]) <= 1e-13 * scale + floor, $"{n}[{i}]");
            }
        }
    }
}
