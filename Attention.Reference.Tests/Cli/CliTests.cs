using System.Security.Cryptography;
using Attention.Cli.Commands;
using Attention.Reference.IO;

namespace Attention.Reference.Tests.Cli;

public sealed class CliTests : IDisposable
{
    private readonly string _temp = Directory.CreateTempSubdirectory("attention-cli-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    private static (int Code, string Out, string Err) Run(params string[] args) => CliHarness.Run(args);

    private string CopyCase(string name) => CliHarness.CopyFolder(GoldenPack.CasePath(name), _temp);

    private static Dictionary<string, string> Hashes(string folder) => CliHarness.Hashes(folder);

    [Fact]
    public void VerifyOnTheBundledPackPasses()
    {
        var (code, output, err) = Run("verify", GoldenPack.Folder);
        Assert.True(code == ExitCodes.Ok, output + err);
        Assert.Contains("12 of 12 cases pass", output);
    }

    [Theory]
    [InlineData("se_c32_r8_bias")]
    [InlineData("conv_3x3_s2")]
    [InlineData("ca_c12_train")]
    [InlineData("gct_l1_c7")]
    public void RunWritesOutputsThatCompareEqualAndLeavesInputsAlone(string name)
    {
        string folder = CopyCase(name);
        var before = Hashes(folder);
        var (code, _, err) = Run("run", folder);
        Assert.True(code == ExitCodes.Ok, err);
        foreach (var (file, hash) in before) Assert.Equal(hash, Hashes(folder)[file]);
        string actual = Path.Combine(folder, "actual.safetensors");
        var (cmp, output, _) = Run("compare", Path.Combine(folder, "expected.safetensors"), actual, "--rtol", "1e-10");
        Assert.True(cmp == ExitCodes.Ok, output);
        Assert.Empty(Directory.GetFiles(folder, ".*tmp"));
    }

    [Fact]
    public void RunInFloat32WritesF32WithinFloat32Tolerance()
    {
        string folder = CopyCase("se_c32_r8_bias");
        string output = Path.Combine(_temp, "f32.safetensors");
        Assert.Equal(ExitCodes.Ok, Run("run", folder, "--dtype", "float32", "--out", output).Code);
        Assert.All(SafeTensors.Read(output), t => Assert.Equal(StoredDType.F32, t.DType));
        var (code, text, _) = Run("compare", Path.Combine(folder, "expected.safetensors"), output);
        Assert.True(code == ExitCodes.Ok, text);
        Assert.Contains("rtol=1.0E-005", text);
    }

    [Fact]
    public void CompareReportsDisagreementWithExit1()
    {
        string folder = CopyCase("gct_l2_c9");
        var expected = SafeTensors.ReadSet<double>(Path.Combine(folder, "expected.safetensors"));
        expected.Get("y").Data[5] *= 1 + 1e-8;
        string perturbed = Path.Combine(_temp, "perturbed.safetensors");
        SafeTensors.Write(perturbed, expected);
        var (code, output, _) = Run("compare", Path.Combine(folder, "expected.safetensors"), perturbed);
        Assert.Equal(ExitCodes.Mismatch, code);
        Assert.Contains("y: FAIL", output);
        Assert.Contains("worst=[0,0,1,0]", output);
        Assert.Equal(ExitCodes.Ok, Run("compare", Path.Combine(folder, "expected.safetensors"), perturbed, "--rtol", "1e-7").Code);
    }

    [Fact]
    public void CompareReadsNpy()
    {
        var t = new DenseTensor<double>([1, 2, 3], 3);
        string a = Path.Combine(_temp, "a.npy"), b = Path.Combine(_temp, "b.npy");
        Npy.Write(a, t);
        Npy.Write(b, new DenseTensor<double>([1, 2, 3.5], 3));
        Assert.Equal(ExitCodes.Ok, Run("compare", a, a).Code);
        Assert.Equal(ExitCodes.Mismatch, Run("compare", a, b).Code);
    }

    [Fact]
    public void VerifyWithActualHoldsAnotherBackendAgainstTheOracle()
    {
        string pack = Path.Combine(_temp, "pack");
        Directory.CreateDirectory(pack);
        string folder = CopyCase("se_c20_h5_linear_nobias");
        Directory.Move(folder, Path.Combine(pack, "se_c20_h5_linear_nobias"));
        folder = Path.Combine(pack, "se_c20_h5_linear_nobias");
        File.Copy(Path.Combine(folder, "expected.safetensors"), Path.Combine(folder, "mine.safetensors"));
        Assert.Equal(ExitCodes.Ok, Run("verify", pack, "--actual", "mine.safetensors").Code);
        var mine = SafeTensors.ReadSet<double>(Path.Combine(folder, "mine.safetensors"));
        mine.Get("x.grad").Data[0] += 1e-3;
        SafeTensors.Write(Path.Combine(folder, "mine.safetensors"), mine);
        var (code, output, _) = Run("verify", pack, "--actual", "mine.safetensors");
        Assert.Equal(ExitCodes.Mismatch, code);
        Assert.Contains("x.grad", output);
    }

    [Fact]
    public void PackWritesCasesThatVerifyAndRefusesToOverwrite()
    {
        string pack = Path.Combine(_temp, "generated");
        var (code, output, err) = Run("pack", "--out", pack, "--seed", "7");
        Assert.True(code == ExitCodes.Ok, err);
        var modules = Directory.GetDirectories(pack)
            .Select(d => Attention.Reference.Models.CaseConfig.Load(Path.Combine(d, "case.json")).Module).ToHashSet();
        // Every module with a variant that fits a pack (the full-size-only networks have none).
        foreach (var m in Attention.Reference.Models.ModelZoo.All.Where(m => m.Name is not ("legacy_seresnet50" or "gct_resnet50" or "efficientnet_b0")))
            Assert.Contains(m.Name, modules);
        var verify = Run("verify", pack);
        Assert.True(verify.Code == ExitCodes.Ok, verify.Out);
        Assert.Equal(ExitCodes.BadInput, Run("pack", "--out", pack).Code);
        Assert.Contains(output.Trim().Split(' ')[1], verify.Out);
    }

    [Fact]
    public void BadInputsExit2WithAMessageAndNoOutput()
    {
        string folder = CopyCase("se_c32_r8_bias");
        string output = Path.Combine(_temp, "out.safetensors");

        File.WriteAllText(Path.Combine(folder, "case.json"), "{\"module\":\"nope\"}");
        var r = Run("run", folder, "--out", output);
        Assert.Equal(ExitCodes.BadInput, r.Code);
        Assert.Contains("unknown module 'nope'", r.Err);

        File.WriteAllText(Path.Combine(folder, "case.json"), "{\"module\":\"se\",\"channels\":32,\"reduction\":8,\"bias\":true,\"colour\":1}");
        r = Run("run", folder, "--out", output);
        Assert.Equal(ExitCodes.BadInput, r.Code);
        Assert.Contains("unknown key 'colour'", r.Err);

        File.WriteAllText(Path.Combine(folder, "case.json"), "{\"module\":\"se\",\"channels\":16,\"reduction\":8,\"bias\":true}");
        r = Run("run", folder, "--out", output);
        Assert.Equal(ExitCodes.BadInput, r.Code);
        // Every tensor disagrees with channels 16: all are listed in one message, naming the file.
        Assert.Contains("se_c32_r8_bias/params.safetensors", r.Err);
        Assert.Contains("fc1.weight: expected [2, 16] or [2, 16, 1, 1], got [4, 32, 1, 1]", r.Err);
        Assert.Contains("fc2.bias: expected [16], got [32]", r.Err);

        File.WriteAllBytes(Path.Combine(folder, "params.safetensors"), [1, 2, 3]);
        r = Run("run", folder, "--out", output);
        Assert.Equal(ExitCodes.BadInput, r.Code);
        Assert.Contains("malformed safetensors", r.Err);

        Assert.False(File.Exists(output));
        Assert.Empty(Directory.GetFiles(_temp, "*.tmp", SearchOption.AllDirectories));
    }

    [Fact]
    public void UsageErrorsExit2()
    {
        Assert.Equal(ExitCodes.BadInput, Run().Code);
        Assert.Equal(ExitCodes.BadInput, Run("frobnicate").Code);
        Assert.Equal(ExitCodes.BadInput, Run("run").Code);
        Assert.Equal(ExitCodes.BadInput, Run("run", "x", "--dtype", "float16").Code);
        Assert.Equal(ExitCodes.BadInput, Run("run", Path.Combine(_temp, "missing")).Code);
        Assert.Equal(ExitCodes.BadInput, Run("verify", _temp).Code);
        Assert.Equal(ExitCodes.BadInput, Run("compare", Path.Combine(_temp, "a"), Path.Combine(_temp, "b")).Code);
        Assert.Equal(ExitCodes.BadInput, Run("compare", "x", "y", "--rtol", "-1").Code);
        Assert.Equal(ExitCodes.BadInput, Run("bench", "nope").Code);
        Assert.Equal(ExitCodes.Ok, Run("--help").Code);
    }
}
