using Attention.Reference.Cases;
using Attention.Reference.IO;
using Attention.Reference.Models;

namespace Attention.Reference.Tests.Models;

/// <summary>The trees the factories build: state_dict names, shapes and sizes as the reference code has them.</summary>
public class NetworkStructureTests
{
    private static long Learnable(Network<double> net) => net.Root.NamedParameters().Sum(p => (long)p.Tensor.Value.Length);

    [Theory]
    [InlineData("resnet50", 25_557_032L)]
    [InlineData("seresnet50", 28_088_024L)]
    [InlineData("seresnext50_32x4d", 27_559_896L)]
    [InlineData("legacy_seresnet50", 28_088_024L)]
    public void FullSizeParameterCountsMatchTimm(string model, long count) =>
        Assert.Equal(count, Learnable(ModelZoo.Create<double>(model)));

    [Fact]
    public void LegacyAndGctNamesAndShapes()
    {
        var legacy = ModelZoo.Create<double>("legacy_seresnet50").StateDict();
        Assert.Equal([64, 3, 7, 7], legacy.Get("layer0.conv1.weight").ShapeArray());
        Assert.Equal([16, 256, 1, 1], legacy.Get("layer1.0.se_module.fc1.weight").ShapeArray());
        Assert.Equal([128, 256, 1, 1], legacy.Get("layer2.0.conv1.weight").ShapeArray());
        Assert.Equal([512, 256, 1, 1], legacy.Get("layer2.0.downsample.0.weight").ShapeArray());
        Assert.Equal([1000, 2048], legacy.Get("last_linear.weight").ShapeArray());

        var gct = ModelZoo.Create<double>("gct_resnet50");
        var sd = gct.StateDict();
        Assert.Equal("layer1.0.downsample.0.alpha", sd.Names.First(n => n.StartsWith("layer1.", StringComparison.Ordinal)));
        Assert.Equal([1, 3, 1, 1], sd.Get("stem.conv1.0.alpha").ShapeArray());
        Assert.Equal([64, 3, 7, 7], sd.Get("stem.conv1.1.weight").ShapeArray());
        Assert.Equal([1, 256, 1, 1], sd.Get("layer2.0.conv1.0.gamma").ShapeArray());
        Assert.Equal([1000, 2048], sd.Get("fc.weight").ShapeArray());
        Assert.False(sd.Contains("layer1.1.downsample.0.alpha"));
        // One GCT before each of the 53 convolutions: 4 stages of 3 + 4 + 6 + 3 blocks × 3, 4 downsamples, the stem.
        Assert.Equal(53, gct.Root.NamedModules().Count(m => m.Module.Kind == "GCT"));
        // Functional ReLU and max pool are not modules: no names.
        Assert.DoesNotContain(gct.Root.NamedModules(), m => m.Module.Kind is "ReLU" or "MaxPool2d");
    }

    [Fact]
    public void StateDictNamesMatchThePytorchFile()
    {
        var folder = CaseFolder.Open(NetworkTestData.CasePath("02_seresnext50_32x4d_train"));
        var net = ModelZoo.Create<double>(folder.Config);
        var file = SafeTensors.Read(Path.Combine(folder.Path, CaseFolder.ParamsFile));
        Assert.Equal(file.Select(t => t.Name).Order(), net.Root.NamedTensors().Select(t => t.Name)
            .Concat(net.Root.IgnoredKeys()).Order());
        Assert.All(file.Where(t => t.Name.EndsWith("num_batches_tracked", StringComparison.Ordinal)), t => Assert.Equal(StoredDType.I64, t.DType));
    }

    [Fact]
    public void ALibraryUserLoadsAStateDictInThreeLines()
    {
        string folder = NetworkTestData.CasePath("01_seresnet50_eval");
        var x = SafeTensors.ReadSet<double>(Path.Combine(folder, "inputs.safetensors")).Get("x");

        var net = ModelZoo.Create<double>("seresnet50", ("layers", new[] { 1, 1, 1, 1 }), ("channels", new[] { 8, 16, 32, 64 }), ("num_classes", 10));
        net.LoadStateDict(Path.Combine(folder, "params.safetensors"));
        var y = net.Forward(x);

        var expected = SafeTensors.ReadSet<double>(Path.Combine(folder, "expected.safetensors")).Get("y");
        for (int i = 0; i < y.Length; i++) Assert.Equal(expected.Data[i], y.Data[i], 1e-10 * Math.Abs(expected.Data[i]) + 1e-14);
    }

    [Fact]
    public void StrictBindingListsEveryMissingUnexpectedAndMismatchedKey()
    {
        var net = ModelZoo.Create<double>("resnet50", ("layers", new[] { 1, 1, 1, 1 }), ("channels", new[] { 4, 4, 8, 8 }), ("num_classes", 3));
        var sd = NetworkTestData.RandomStateDict(net, 1);
        var broken = new TensorSet<double>("broken.safetensors");
        foreach (var (name, t) in sd)
            if (name != "layer2.0.bn1.running_var" && name != "fc.bias")
                broken.Set(name, name == "layer1.0.conv2.weight" ? new DenseTensor<double>(4, 4, 1, 1) : t);
        broken.Set("layer9.weight", new DenseTensor<double>(2));
        var e = Assert.Throws<StateDictException>(() => net.LoadStateDict(broken));
        Assert.Equal(["layer2.0.bn1.running_var", "fc.bias"], e.Missing);
        Assert.Equal(["layer9.weight"], e.Unexpected);
        Assert.Single(e.Mismatched);
        Assert.Contains("layer1.0.conv2.weight: expected [4, 4, 3, 3], got [4, 4, 1, 1]", e.Message);
        Assert.Contains("missing key(s): layer2.0.bn1.running_var, fc.bias", e.Message);
        Assert.StartsWith("broken.safetensors:", e.Message);
        // Nothing was loaded: the network still holds its initial values.
        Assert.All(net.StateDict().Get("conv1.weight").Data, v => Assert.Equal(0.0, v));
    }

    [Fact]
    public void AModulePrefixIsStrippedAndIntegerCountersAreIgnored()
    {
        var net = ModelZoo.Create<double>("resnet50", ("layers", new[] { 1, 1, 1, 1 }), ("channels", new[] { 4, 4, 8, 8 }), ("num_classes", 3));
        var sd = NetworkTestData.RandomStateDict(net, 2);
        var stored = sd.Select(kv => new StoredTensor("module." + kv.Key, StoredDType.F64, kv.Value.ShapeArray(), kv.Value.Data)).ToList();
        stored.Add(new StoredTensor("module.bn1.num_batches_tracked", StoredDType.I64, [], [7]));
        net.LoadStateDict(stored, "ddp.safetensors");
        Assert.Equal(sd.Get("fc.weight").Data, net.StateDict().Get("fc.weight").Data);

        stored.Add(new StoredTensor("module.fc.weight_scale", StoredDType.I64, [], [1]));
        // One kind of problem: the exception type says which (here an unexpected key), the message names it.
        var e = Assert.Throws<InvalidDataException>(() => net.LoadStateDict(stored, "ddp.safetensors"));
        Assert.Contains("'fc.weight_scale'", e.Message);
    }

    [Fact]
    public void UnknownKwargsAreRefused()
    {
        var e = Assert.Throws<CaseFormatException>(() => ModelZoo.Create<double>(CaseConfig.Parse("""{"module": "seresnet50", "width": 2}""")));
        Assert.Contains("width", e.Message);
        Assert.Throws<CaseFormatException>(() => ModelZoo.Create<double>(CaseConfig.Parse("""{"module": "gct_resnet50", "num_classes": 10}""")));
        Assert.Throws<CaseFormatException>(() => ModelZoo.Create<double>(CaseConfig.Parse("""{"module": "resnet50", "layers": [1, 1], "channels": [4]}""")));
    }
}
