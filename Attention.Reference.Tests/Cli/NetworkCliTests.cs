using System.Security.Cryptography;
using Attention.Cli.Commands;
using Attention.Reference.IO;

using Attention.Reference.Tests.Models;

namespace Attention.Reference.Tests.Cli;

/// <summary>The CLI on network cases: dumps, the first divergence, verify, and refusals that write nothing.</summary>
public sealed class NetworkCliTests : IDisposable
{
    private readonly string _temp = Directory.CreateTempSubdirectory("attention-net-cli-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    private static (int Code, string Out, string Err) Run(params string[] args) => CliHarness.Run(args);

    private string CopyCase(string name, string? into = null) =>
        CliHarness.CopyFolder(NetworkTestData.CasePath(name), into ?? _temp);

    /// <summary>A state_dict file's floating-point tensors (the integer num_batches_tracked counters left out).</summary>
    private static TensorSet<double> ReadFloats(string path) =>
        SafeTensors.Read(path).Where(t => !t.IsInteger).ToTensorSet<double>(Path.GetFileName(path));

    private static Dictionary<string, string> Hashes(string folder) => CliHarness.Hashes(folder);

    [Fact]
    public void RunDumpsEveryModuleInCallOrderAndCompareNamesTheFirstDivergence()
    {
        string folder = CopyCase("01_seresnet50_eval");
        var before = Hashes(folder);
        string output = Path.Combine(_temp, "y.safetensors"), dump = Path.Combine(_temp, "dump.safetensors");
        var (code, text, err) = Run("run", folder, "--out", output, "--dump", dump, "--threads", "1");
        Assert.True(code == ExitCodes.Ok, text + err);
        Assert.Equal(before, Hashes(folder));
        SafeTensors.Read(Path.Combine(folder, "expected_dump.safetensors"), out var expectedMeta);
        var dumped = SafeTensors.Read(dump, out var meta);
        Assert.Equal(expectedMeta[DumpComparer.OrderKey], meta[DumpComparer.OrderKey]);
        Assert.All(dumped, t => Assert.Equal(StoredDType.F64, t.DType));
        Assert.Equal(ExitCodes.Ok, Run("compare", Path.Combine(folder, "expected_dump.safetensors"), dump).Code);

        // Perturb two modules' outputs: compare reports the one the forward reaches first.
        var set = SafeTensors.ReadSet<double>(dump);
        set.Get("layer3.0.bn2").Data[3] += 1e-6;
        set.Get("layer2.0.se.gate").Data[1] += 1e-6;
        string bad = Path.Combine(_temp, "bad_dump.safetensors");
        SafeTensors.Write(bad, set, new Dictionary<string, string> { [DumpComparer.OrderKey] = meta[DumpComparer.OrderKey] });
        var r = Run("compare", Path.Combine(folder, "expected_dump.safetensors"), bad);
        Assert.Equal(ExitCodes.Mismatch, r.Code);
        Assert.Contains("first divergence: layer2.0.se.gate, max rel err", r.Out);
    }

    [Fact]
    public void VerifyPassesTheNetworkPackAndNamesTheFirstModuleWhenTheOracleDisagrees()
    {
        var (code, text, err) = Run("verify", NetworkTestData.Folder, "--grad-conventions", "libtorch");
        Assert.True(code == ExitCodes.Ok, text + err);
        Assert.Contains("9 of 9 cases pass", text);
        // The exact oracle: only MobileNetV3's gradients differ (nn.Hardsigmoid's 1/6); no module diverges.
        (code, text, _) = Run("verify", NetworkTestData.Folder);
        Assert.Equal(ExitCodes.Mismatch, code);
        Assert.Contains("7 of 9 cases pass, 2 disagree", text);
        Assert.DoesNotContain("first divergence", text);

        string pack = Path.Combine(_temp, "pack");
        string folder = CopyCase("03_resnet50_eval", pack);
        string paramsFile = Path.Combine(folder, "params.safetensors");
        var ps = ReadFloats(paramsFile);
        ps.Get("layer3.0.conv2.weight").Data[0] += 1e-3;
        SafeTensors.Write(paramsFile, ps);
        (code, text, _) = Run("verify", pack);
        Assert.Equal(ExitCodes.Mismatch, code);
        Assert.Contains("first divergence: layer3.0.conv2,", text);
    }

    [Fact]
    public void AStateDictThatDoesNotFitIsRefusedWithEveryKeyNamedAndNothingWritten()
    {
        string folder = CopyCase("01_seresnet50_eval");
        string paramsFile = Path.Combine(folder, "params.safetensors");
        var ps = ReadFloats(paramsFile);
        var broken = new TensorSet<double>("params");
        foreach (var (name, t) in ps)
            if (name is not ("layer1.0.se.fc1.bias" or "fc.weight")) broken.Set(name, name == "bn1.weight" ? new DenseTensor<double>(3) : t);
        broken.Set("head.weight", new DenseTensor<double>(1));
        SafeTensors.Write(paramsFile, broken);
        string output = Path.Combine(_temp, "y.safetensors"), dump = Path.Combine(_temp, "d.safetensors");
        var (code, _, err) = Run("run", folder, "--out", output, "--dump", dump);
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Contains("params.safetensors", err);
        Assert.Contains("missing key(s): layer1.0.se.fc1.bias, fc.weight", err);
        Assert.Contains("unexpected key(s): head.weight", err);
        Assert.Contains("bn1.weight: expected [64], got [3]", err);
        Assert.False(File.Exists(output));
        Assert.False(File.Exists(dump));
    }

    [Fact]
    public void ACaseMayHoldParamsPthInsteadOfParamsSafetensorsButNotBoth()
    {
        string folder = CopyCase("01_seresnet50_eval");
        string pth = Path.Combine(AppContext.BaseDirectory, "testdata", "pth", "seresnet50_01_params.pth");
        File.Copy(pth, Path.Combine(folder, "params.pth"));
        var r = Run("verify", folder);
        Assert.Equal(ExitCodes.BadInput, r.Code);
        Assert.Contains("both params.safetensors and params.pth", r.Out);

        File.Delete(Path.Combine(folder, "params.safetensors"));
        r = Run("verify", folder);
        Assert.True(r.Code == ExitCodes.Ok, r.Out + r.Err);
        Assert.Contains("1 of 1 cases pass", r.Out);

        // The library reads the same file by extension.
        var net = Reference.Models.ModelZoo.Create<double>(Reference.Models.CaseConfig.Load(Path.Combine(folder, "case.json")));
        net.LoadStateDict(pth);
        Assert.Equal(SafeTensors.Read(Path.Combine(NetworkTestData.CasePath("01_seresnet50_eval"), "params.safetensors"))
            .Single(t => t.Name == "layer2.0.se.fc2.weight").Values, net.StateDict().Get("layer2.0.se.fc2.weight").Data);
    }

    [Fact]
    public void TracePrintsEveryModuleAndDrawsTheSeExcitations()
    {
        var (code, text, err) = Run("trace", NetworkTestData.CasePath("01_seresnet50_eval"), "--svg", Path.Combine(_temp));
        Assert.True(code == ExitCodes.Ok, text + err);
        var order = SafeTensors.Read(Path.Combine(NetworkTestData.CasePath("01_seresnet50_eval"), "expected_dump.safetensors"), out var meta);
        foreach (var name in meta[DumpComparer.OrderKey].Split(','))
            Assert.Matches($@"\n\s*\d+\s+{System.Text.RegularExpressions.Regex.Escape(name)}\s", text);
        Assert.Matches(@"layer3\.0\.se\s+SEModule\s+\[1, 128, 2, 2\].*\d / ", text);
        var doc = new System.Xml.XmlDocument();
        doc.Load(Path.Combine(_temp, "se_excitations.svg"));
        Assert.Equal("svg", doc.DocumentElement!.Name);
        Assert.Equal(4, doc.GetElementsByTagName("text").Cast<System.Xml.XmlNode>().Count(t => t.InnerText.EndsWith(".se", StringComparison.Ordinal)));
    }

    [Fact]
    public void TraceDrawsTheCaMapsOfANetworkWhoseAttentionIsCa()
    {
        // Before: "no SE module: no picture" for mbv2_ca. Now one channel-mean map per CA module, each labelled.
        string dir = Path.Combine(_temp, "ca_svg");
        Directory.CreateDirectory(dir);
        var (code, text, err) = Run("trace", NetworkTestData.CasePath("06_mbv2_ca_eval"), "--svg", dir);
        Assert.True(code == ExitCodes.Ok, text + err);
        Assert.Contains("ca_attention_maps.svg", text);
        int modules = System.Text.RegularExpressions.Regex.Matches(text, @"\n\s*\d+\s+\S+\s+CoordAtt\s").Count;
        Assert.True(modules > 0, text);
        var doc = new System.Xml.XmlDocument();
        doc.Load(Path.Combine(dir, "ca_attention_maps.svg"));
        Assert.Equal(modules, doc.GetElementsByTagName("text").Cast<System.Xml.XmlNode>().Count(t => t.InnerText.Contains("(C=", StringComparison.Ordinal)));
        Assert.False(File.Exists(Path.Combine(dir, "se_excitations.svg")));
    }

    [Fact]
    public void APickleWithAForbiddenGlobalAndATruncatedZipAreRefusedAndNothingIsWritten()
    {
        string folder = CopyCase("01_seresnet50_eval");
        File.Delete(Path.Combine(folder, "params.safetensors"));
        string pthDir = Path.Combine(AppContext.BaseDirectory, "testdata", "pth");
        File.Copy(Path.Combine(pthDir, "malicious.pth"), Path.Combine(folder, "params.pth"));
        string output = Path.Combine(_temp, "y.safetensors");
        var r = Run("run", folder, "--out", output);
        Assert.Equal(ExitCodes.BadInput, r.Code);
        Assert.Contains("forbidden global 'os.system'", r.Err);
        Assert.Contains("params.pth", r.Err);

        var good = File.ReadAllBytes(Path.Combine(pthDir, "seresnet50_01_params.pth"));
        File.WriteAllBytes(Path.Combine(folder, "params.pth"), good[..(good.Length / 2)]);
        r = Run("run", folder, "--out", output);
        Assert.Equal(ExitCodes.BadInput, r.Code);
        Assert.Contains("params.pth", r.Err);
        Assert.False(File.Exists(output));
        Assert.False(File.Exists(Path.Combine(folder, "actual.safetensors")));
    }

    [Fact]
    public void TraceShowsTheGatesOfCoordinateAttentionAndGct()
    {
        var (code, text, err) = Run("trace", NetworkTestData.CasePath("06_mbv2_ca_eval"));
        Assert.True(code == ExitCodes.Ok, text + err);
        Assert.Matches(@"features\.2\.conv\.6\s+CoordAtt\s+\[1, \d+, 10, 10\].*\d / +0\.\d+ / +0\.\d+", text);

        // GCT: every one of the 17 modules of a one-block-per-stage GCT-ResNet reports a gate in [0, 2].
        var net = new Reference.Models.Network<double>("gct", Reference.Models.ResNets.GctResNet50<double>([1, 1, 1, 1], 4));
        net.LoadStateDict(Reference.Models.RandomWeights.StateDict(net, 2));
        var gates = new List<(string, DenseTensor<double>)>();
        net.Run(Reference.Models.RandomWeights.Inputs(1, 32, 4, 3).Get("x"), null, false, onGate: (n, g) => gates.Add((n, g)));
        Assert.Equal(17, gates.Count);
        Assert.Equal("stem.conv1.0", gates[0].Item1);
        Assert.All(gates, g => Assert.All(g.Item2.Data, v => Assert.InRange(v, 0.0, 2.0)));
    }

    [Fact]
    public void NetworkUsageErrorsExit2()
    {
        string folder = CopyCase("03_resnet50_eval");
        File.WriteAllText(Path.Combine(folder, "case.json"), """{"module": "resnet50", "training": false, "depth": 50}""");
        var r = Run("run", folder);
        Assert.Equal(ExitCodes.BadInput, r.Code);
        Assert.Contains("depth", r.Err);
        Assert.False(File.Exists(Path.Combine(folder, "actual.safetensors")));

        string single = Path.Combine(AppContext.BaseDirectory, "testdata", "libtorch-2.10", "se_c32_r8_bias");
        r = Run("run", single, "--out", Path.Combine(_temp, "o.safetensors"), "--dump", Path.Combine(_temp, "d.safetensors"));
        Assert.Equal(ExitCodes.BadInput, r.Code);
        Assert.Contains("--dump needs a network case", r.Err);

        Assert.Equal(ExitCodes.BadInput, Run("bench", "net").Code);
        Assert.Equal(ExitCodes.BadInput, Run("bench", "net", "alexnet").Code);
        Assert.Equal(ExitCodes.BadInput, Run("run", folder, "--threads", "0").Code);
    }
}
