using Google.Protobuf;
using System.Security.Cryptography;
using Attention.Cli.Commands;
using Attention.Reference.IO;

namespace Attention.Reference.Tests.Cli;

/// <summary>
/// The CLI contract under misuse: verdicts that cannot lie (tolerances, missing tensors, NaN), outputs that never
/// destroy inputs (inputs, links, devices, formats), and the small things a newcomer hits.
/// </summary>
public sealed class TrustTests : IDisposable
{
    private readonly string _temp = Directory.CreateTempSubdirectory("attention-trust-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    [Fact]
    public void AnImageTooThinToResizeIsRefusedNamingTheFile()
    {
        // 1 x 300000 pixels: its shorter side to the recipe's 235 would make 235 x 70.5 M pixels. Before, the message named neither
        // the file nor the cause ("resize target ... is outside 1 .. 268435456 pixels").
        string png = Path.Combine(_temp, "thin.png");
        File.WriteAllBytes(png, Png(1, 300_000));
        string weights = Path.Combine(_temp, "r50.safetensors");
        SafeTensors.Write(weights, Attention.Reference.Models.RandomWeights.StateDict(Attention.Reference.Models.ModelZoo.Create<double>("resnet50"), 1));
        var (code, _, err) = CliHarness.Run(["infer", "resnet50", png, "--weights", weights]);
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.True(err.Contains("thin.png: the image is 1x300000: resizing its shorter side to ") && err.Contains("crop it first"), err);
    }

    /// <summary>A grey 8-bit PNG of the given size, all pixels 128 (stored zlib blocks, hand-made chunks).</summary>
    private static byte[] Png(int width, int height)
    {
        static byte[] Chunk(string type, byte[] data)
        {
            var body = System.Text.Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
            uint crc = 0xFFFFFFFF;
            foreach (byte b in body)
            {
                crc ^= b;
                for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? 0xEDB88320 ^ (crc >> 1) : crc >> 1;
            }
            crc ^= 0xFFFFFFFF;
            var len = new byte[4];
            System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(len, data.Length);
            var c = new byte[4];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(c, crc);
            return [.. len, .. body, .. c];
        }
        var ihdr = new byte[13];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8; // bit depth; colour type 0 (grey), compression, filter, interlace 0
        var raw = new byte[height * (width + 1)];
        for (int y = 0; y < height; y++) raw.AsSpan(y * (width + 1) + 1, width).Fill(128);
        using var z = new MemoryStream();
        using (var zs = new System.IO.Compression.ZLibStream(z, System.IO.Compression.CompressionLevel.Optimal, leaveOpen: true)) zs.Write(raw);
        return [0x89, (byte)'P', (byte)'N', (byte)'G', 13, 10, 26, 10, .. Chunk("IHDR", ihdr), .. Chunk("IDAT", z.ToArray()), .. Chunk("IEND", [])];
    }

    [Fact]
    public void AnOutputTooLargeToCountNamesItsShapeAndTheSizeKeys()
    {
        string target = Path.Combine(_temp, "huge", "conv");
        Directory.CreateDirectory(target);
        foreach (var f in Directory.GetFiles(GoldenPack.CasePath("conv_3x3_p1_bias"))) File.Copy(f, Path.Combine(target, Path.GetFileName(f)));
        string json = Path.Combine(target, "case.json");
        File.WriteAllText(json, File.ReadAllText(json).Replace("\"padding\":1,", "\"padding\":1000000000,", StringComparison.Ordinal));
        var (code, _, err) = CliHarness.Run(["verify", Path.GetDirectoryName(target)!]);
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Contains("the output would be [2, 6, 2000000004, 2000000005], more elements than 64-bit sizes count", err);
        Assert.Contains("check the sizes in the case (in_channels, out_channels, kernel_size, padding)", err);
    }

    [Fact]
    public void ACaseMayGiveItsTensorsAsTorchSaveOrNpz()
    {
        // Environments that cannot write safetensors (Debian's PyTorch): inputs.pth as torch.save writes a dict of tensors,
        // params.npz as numpy.savez writes one; the case verifies exactly as the safetensors original.
        string target = Path.Combine(_temp, "forms", "se");
        Directory.CreateDirectory(target);
        string source = GoldenPack.CasePath("se_c32_r8_bias");
        File.Copy(Path.Combine(source, "case.json"), Path.Combine(target, "case.json"));
        File.Copy(Path.Combine(source, "expected.safetensors"), Path.Combine(target, "expected.safetensors"));
        File.Copy(Path.Combine(AppContext.BaseDirectory, "testdata", "pth", "se_c32_r8_bias_inputs.pth"), Path.Combine(target, "inputs.pth"));
        using (var zip = new System.IO.Compression.ZipArchive(File.Create(Path.Combine(target, "params.npz")), System.IO.Compression.ZipArchiveMode.Create))
            foreach (var (name, value) in SafeTensors.ReadSet<double>(Path.Combine(source, "params.safetensors")))
                using (var e = zip.CreateEntry(name + ".npy").Open()) e.Write(Npy.Serialize(value));
        var (code, stdout, err) = CliHarness.Run(["verify", Path.GetDirectoryName(target)!]);
        Assert.True(code == ExitCodes.Ok, stdout + err);
        Assert.Contains("1 of 1 cases pass", stdout);
        // Two forms of one file are refused rather than one silently preferred.
        File.Copy(Path.Combine(source, "inputs.safetensors"), Path.Combine(target, "inputs.safetensors"));
        var (code2, _, err2) = CliHarness.Run(["verify", Path.GetDirectoryName(target)!]);
        Assert.Equal(ExitCodes.BadInput, code2);
        Assert.Contains("has both inputs.safetensors and inputs.pth; keep one", err2);
    }

    [Fact]
    public void VerifyNamesTheSubFoldersItSkips()
    {
        string pack = Path.Combine(_temp, "pack");
        Directory.CreateDirectory(pack);
        string source = GoldenPack.CasePath("se_c32_r8_bias");
        string target = Path.Combine(pack, "se_case");
        Directory.CreateDirectory(target);
        foreach (var f in Directory.GetFiles(source)) File.Copy(f, Path.Combine(target, Path.GetFileName(f)));
        Directory.CreateDirectory(Path.Combine(pack, "notes"));
        Directory.CreateDirectory(Path.Combine(pack, "a_case_with_a_typo"));
        var (code, stdout, err) = CliHarness.Run(["verify", pack]);
        Assert.True(code == ExitCodes.Ok, stdout + err);
        Assert.Contains("1 of 1 cases pass", stdout);
        Assert.Contains("skipped 2 sub-folder(s) without a case.json: a_case_with_a_typo, notes", err);
    }

    [Fact]
    public void WeightsOfAnotherModelAreSummarisedAndTheModelNamed()
    {
        // All of mobilenet_v2's keys against resnet50: counts, the first few of each list, and the model they fit — not
        // hundreds of names on one line.
        string weights = Path.Combine(_temp, "mbv2.safetensors");
        SafeTensors.Write(weights, Attention.Reference.Models.RandomWeights.StateDict(Attention.Reference.Models.ModelZoo.Create<double>("mobilenet_v2"), 1));
        string png = Path.Combine(AppContext.BaseDirectory, "testdata", "images", "sample_97x73.png");
        var (code, _, err) = CliHarness.Run(["infer", "resnet50", png, "--weights", weights]);
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Matches(@"\d+ missing key\(s\): conv1\.weight, .* and \d+ more\. \d+ unexpected key\(s\): features\.0\.0\.weight, .* and \d+ more\.", err);
        Assert.Contains("These weights look like mobilenet_v2's", err);
        Assert.True(err.Length < 1200, $"{err.Length} characters: {err}");
    }

    [Fact]
    public void CompareReadsTensorProtoAndNpzFilesAndRefusesUnknownTypesByName()
    {
        // What export and the ONNX test sets write (.pb), and numpy.savez archives (.npz), against .npy and safetensors.
        var t = new DenseTensor<float>([1.5f, -2.25f, 3f, 0.125f], [2, 2]);
        string pb = Path.Combine(_temp, "output_0.pb"), npy = Path.Combine(_temp, "y.npy"), npz = Path.Combine(_temp, "all.npz");
        File.WriteAllBytes(pb, Attention.Reference.Onnx.OnnxTensors.ToProto("y", t, Attention.Reference.Onnx.OnnxElementType.Float).ToByteArray());
        Npy.Write(npy, t);
        using (var zip = new System.IO.Compression.ZipArchive(File.Create(npz), System.IO.Compression.ZipArchiveMode.Create))
            foreach (var name in new[] { "y", "z" })
                using (var e = zip.CreateEntry(name + ".npy").Open()) e.Write(Npy.Serialize(t));
        string st = Path.Combine(_temp, "yz.safetensors");
        var set = new TensorSet<float>();
        set.Set("y", t);
        set.Set("z", t);
        SafeTensors.Write(st, set);
        foreach (var (expected, actual) in new[] { (pb, npy), (npy, pb), (npz, st), (st, npz) })
        {
            var (code, stdout, err) = CliHarness.Run(["compare", expected, actual]);
            Assert.True(code == ExitCodes.Ok, $"compare {expected} {actual}: exit {code}\n{stdout}{err}");
            Assert.Contains("PASS", stdout);
        }
        var (bad, _, message) = CliHarness.Run(["compare", npy, Path.Combine(AppContext.BaseDirectory, "testdata", "images", "sample_97x73.png")]);
        Assert.Equal(ExitCodes.BadInput, bad);
        Assert.Contains("sample_97x73.png: unknown tensor file type '.png'", message);
    }

    private static (int Code, string Out, string Err) Run(params string[] args) => CliHarness.Run(args);

    private string CopyCase(string name, string? into = null) =>
        CliHarness.CopyFolder(GoldenPack.CasePath(name), into ?? _temp);

    private static Dictionary<string, string> Hashes(string folder) => CliHarness.Hashes(folder);

    [Theory]
    [InlineData("--rtol", "-1")]
    [InlineData("--rtol", "NaN")]
    [InlineData("--rtol", "Infinity")]
    [InlineData("--atol", "-1e-3")]
    [InlineData("--atol", "NaN")]
    public void NegativeNanAndInfiniteTolerancesAreRefusedByVerifyAndCompare(string option, string value)
    {
        var r = Run("verify", GoldenPack.CasePath("gct_l1_c7"), option, value);
        Assert.Equal(ExitCodes.BadInput, r.Code);
        Assert.Contains($"{option} must be a finite number ≥ 0", r.Err);
        string e = Path.Combine(GoldenPack.CasePath("gct_l1_c7"), "expected.safetensors");
        Assert.Equal(ExitCodes.BadInput, Run("compare", e, e, option, value).Code);
    }

    [Fact]
    public void VerifyTakesAnAbsoluteTolerance()
    {
        Assert.Equal(ExitCodes.Ok, Run("verify", GoldenPack.CasePath("gct_l1_c7"), "--atol", "1e-12").Code);
        Assert.Equal(ExitCodes.Mismatch, Run("verify", GoldenPack.CasePath("gct_l1_c7"), "--rtol", "0", "--atol", "0").Code);
    }

    [Fact]
    public void ABackendOutputThatLacksExpectedTensorsFailsNamingThem()
    {
        string pack = Path.Combine(_temp, "pack");
        string folder = CopyCase("se_c32_r8_bias", pack);
        var oracle = global::Attention.Reference.Cases.CaseFolder.Open(folder).Run<double>();
        var onlyY = new TensorSet<double>("mine");
        onlyY.Set("y", oracle.Get("y"));
        SafeTensors.Write(Path.Combine(folder, "mine.safetensors"), onlyY);
        var r = Run("verify", pack, "--actual", "mine.safetensors");
        Assert.Equal(ExitCodes.Mismatch, r.Code);
        Assert.Contains("x.grad: FAIL missing from mine.safetensors", r.Out);
        Assert.Contains("fc1.weight.grad: FAIL missing", r.Out);

        // Opting out still lists what went unchecked.
        r = Run("verify", pack, "--actual", "mine.safetensors", "--allow-missing");
        Assert.Equal(ExitCodes.Ok, r.Code);
        Assert.Contains("unchecked (not in mine.safetensors): x.grad, fc1.weight.grad", r.Out);

        // x.grad saved under another name: missing, and the stray tensor is listed.
        var renamed = new TensorSet<double>("mine");
        foreach (var (n, t) in oracle) renamed.Set(n == "x.grad" ? "input.grad" : n, t);
        SafeTensors.Write(Path.Combine(folder, "mine.safetensors"), renamed);
        r = Run("verify", pack, "--actual", "mine.safetensors");
        Assert.Equal(ExitCodes.Mismatch, r.Code);
        Assert.Contains("x.grad: FAIL missing", r.Out);
        Assert.Contains("not expected (ignored): input.grad", r.Out);
        Assert.Equal(ExitCodes.BadInput, Run("verify", pack, "--allow-missing").Code);
    }

    [Fact]
    public void ANanShowsAnInfiniteErrorRatioNextToFail()
    {
        string pack = Path.Combine(_temp, "pack");
        string folder = CopyCase("gct_l2_c9", pack);
        var oracle = global::Attention.Reference.Cases.CaseFolder.Open(folder).Run<double>();
        oracle.Get("y").Data[3] = double.NaN;
        SafeTensors.Write(Path.Combine(folder, "mine.safetensors"), oracle);
        var r = Run("verify", pack, "--actual", "mine.safetensors");
        Assert.Equal(ExitCodes.Mismatch, r.Code);
        Assert.Matches(@"gct_l2_c9\s+gct\s+\d+\s+inf\s+y\s+FAIL", r.Out);
    }

    [Theory]
    [InlineData("inputs.safetensors")]
    [InlineData("params.safetensors")]
    [InlineData("expected.safetensors")]
    public void RunRefusesToWriteOverItsOwnInputs(string file)
    {
        string folder = CopyCase("se_c32_r8_bias");
        var before = Hashes(folder);
        var r = Run("run", folder, "--out", Path.Combine(folder, file));
        Assert.Equal(ExitCodes.BadInput, r.Code);
        Assert.Contains("is an input of this command", r.Err);
        Assert.Equal(before, Hashes(folder));

        // The same through a symbolic link, and through a linked folder.
        string link = Path.Combine(_temp, "link.safetensors");
        File.CreateSymbolicLink(link, Path.Combine(folder, file));
        Assert.Equal(ExitCodes.BadInput, Run("run", folder, "--out", link).Code);
        string dirLink = Path.Combine(_temp, "case-link");
        Directory.CreateSymbolicLink(dirLink, folder);
        Assert.Equal(ExitCodes.BadInput, Run("run", folder, "--out", Path.Combine(dirLink, file)).Code);
        Assert.Equal(before, Hashes(folder));
    }

    [Fact]
    public void OutputsAreNeverWrittenThroughLinksOrOntoDirectoriesOrDevices()
    {
        string folder = CopyCase("gct_l1_c7");
        string elsewhere = Path.Combine(_temp, "precious.safetensors");
        File.WriteAllText(elsewhere, "keep me");
        string link = Path.Combine(_temp, "out.safetensors");
        File.CreateSymbolicLink(link, elsewhere);
        var r = Run("run", folder, "--out", link);
        Assert.Equal(ExitCodes.BadInput, r.Code);
        Assert.Contains("symbolic link", r.Err);
        Assert.Equal("keep me", File.ReadAllText(elsewhere));
        Assert.NotNull(new FileInfo(link).LinkTarget);

        string dir = Path.Combine(_temp, "d.safetensors");
        Directory.CreateDirectory(dir);
        Assert.Equal(ExitCodes.BadInput, Run("run", folder, "--out", dir).Code);
        if (OperatingSystem.IsLinux())
        {
            var e = Assert.Throws<IOException>(() => AtomicFile.CheckTarget("/dev/null"));
            Assert.Contains("device", e.Message);
        }
        Assert.Equal(ExitCodes.BadInput, Run("run", folder, "--out", "").Code);
    }

    [Fact]
    public void TheOutputFormatFollowsTheExtension()
    {
        string folder = CopyCase("gct_l1_c7");
        var r = Run("run", folder, "--out", Path.Combine(_temp, "y.npy"));
        Assert.Equal(ExitCodes.BadInput, r.Code);
        Assert.Contains("an .npy file holds one tensor", r.Err);
        Assert.False(File.Exists(Path.Combine(_temp, "y.npy")));
        r = Run("run", folder, "--out", Path.Combine(_temp, "y.bin"));
        Assert.Equal(ExitCodes.BadInput, r.Code);
        Assert.Contains("unknown extension '.bin'", r.Err);

        // Without y.grad the run has one output: an .npy file holds it, readable as .npy.
        var inputs = SafeTensors.ReadSet<double>(Path.Combine(folder, "inputs.safetensors"));
        var onlyX = new TensorSet<double>("inputs");
        onlyX.Set("x", inputs.Get("x"));
        SafeTensors.Write(Path.Combine(folder, "inputs.safetensors"), onlyX);
        string npy = Path.Combine(_temp, "y.npy");
        Assert.Equal(ExitCodes.Ok, Run("run", folder, "--out", npy).Code);
        Assert.Equal(inputs.Get("x").ShapeArray(), Npy.Read(npy).Shape);
    }

    [Fact]
    public void NewcomerPaperCuts()
    {
        var r = Run();
        Assert.Equal(ExitCodes.BadInput, r.Code);
        Assert.Contains("Usage:", r.Out);
        Assert.DoesNotContain("Required command", r.Err);

        r = Run("compare", "a.safetensors", "b.safetensors", "--rtol", "abc");
        Assert.Equal(ExitCodes.BadInput, r.Code);
        Assert.Contains("--rtol expects a number, got 'abc'", r.Err);
        Assert.DoesNotContain("System.", r.Err);

        string svg = Path.Combine(_temp, "new", "folder");
        Assert.Equal(ExitCodes.Ok, Run("trace", GoldenPack.CasePath("gct_l2_c9"), "--steps", "forward", "--svg", svg).Code);
        Assert.True(File.Exists(Path.Combine(svg, "gct_gate.svg")));
    }
}

/// <summary>Tolerances people can reason about: defaults by stored dtype, the worst elements, channels, JSON, --name.</summary>
public sealed class ToleranceTests : IDisposable
{
    private readonly string _temp = Directory.CreateTempSubdirectory("attention-tol-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    private static (int Code, string Out, string Err) Run(params string[] args) => CliHarness.Run(args);

    [Fact]
    public void DefaultTolerancesAndUlpsFollowTheCoarserStoredDtype()
    {
        Assert.Equal(1e-10, TensorComparer.DefaultRTol(StoredDType.F64, StoredDType.F64));
        Assert.Equal(1e-5, TensorComparer.DefaultRTol(StoredDType.F64, StoredDType.F32));
        Assert.Equal(1e-2, TensorComparer.DefaultRTol(StoredDType.F16, StoredDType.F32));
        Assert.Equal(5e-2, TensorComparer.DefaultRTol(StoredDType.F64, StoredDType.BF16));
        Assert.Equal(1e-10, TensorComparer.DefaultRTol(StoredDType.I64, StoredDType.F64));
        // One F16 step at 1.0 is 2^-10: one unit in the last place of the stored type.
        double e = 1.0, a = 1.0 + Math.Pow(2, -10);
        var c = TensorComparer.Compare(new StoredTensor("h", StoredDType.F16, [1], [e]), new StoredTensor("h", StoredDType.F64, [1], [a]));
        Assert.Equal(1, c.MaxUlps);
        Assert.True(c.Passed);
        Assert.Equal(1, TensorComparer.Ulps(1.0, 1.0 + Math.Pow(2, -7), StoredDType.BF16));
        Assert.Equal(0x3F80, TensorComparer.BFloat16Bits(1.0f));
    }

    [Fact]
    public void ShowListsTheWorstElementsAndTheChannelsOverToleranceAndJsonSaysTheSame()
    {
        var e = new TensorSet<double>("e");
        var x = new DenseTensor<double>(2, 3, 2, 2);
        for (int i = 0; i < x.Length; i++) x.Data[i] = 1 + i;
        e.Set("y", x);
        var a = new TensorSet<double>("a");
        var y = x.Clone();
        y[1, 2, 0, 1] *= 1 + 1e-6;
        y[0, 2, 1, 1] *= 1 + 1e-7;
        y[0, 0, 0, 0] = double.NaN;
        a.Set("y", y);
        a.Set("z", new DenseTensor<double>(1));
        string ep = Path.Combine(_temp, "e.safetensors"), ap = Path.Combine(_temp, "a.safetensors");
        SafeTensors.Write(ep, e);
        SafeTensors.Write(ap, a);
        var r = Run("compare", ep, ap, "--show", "2");
        Assert.Equal(ExitCodes.Mismatch, r.Code);
        Assert.Contains("    [0,0,0,0] e=1 a=NaN err/tol=∞", r.Out.Replace("Infinity", "∞"));
        Assert.Contains("    [1,2,0,1] e=", r.Out);
        Assert.Contains("channels over tolerance (2 of 3): c0 1/8 worst ", r.Out);
        Assert.Contains("not in e.safetensors (not compared): z", r.Out);

        var json = Run("compare", ep, ap, "--show", "3", "--json");
        Assert.Equal(ExitCodes.Mismatch, json.Code);
        using var doc = System.Text.Json.JsonDocument.Parse(json.Out);
        var root = doc.RootElement;
        Assert.False(root.GetProperty("passed").GetBoolean());
        var t = root.GetProperty("results")[0];
        Assert.Equal("y", t.GetProperty("name").GetString());
        Assert.Equal(3, t.GetProperty("violations").GetInt64());
        Assert.Equal("Infinity", t.GetProperty("worst_ratio").GetString());
        Assert.Equal(3, t.GetProperty("worst").GetArrayLength());
        Assert.Equal("z", root.GetProperty("not_compared")[0].GetString());
    }

    [Fact]
    public void VerifyJsonReportsEachCase()
    {
        var r = Run("verify", Path.Combine(AppContext.BaseDirectory, "testdata", "libtorch-2.10"), "--json");
        Assert.Equal(ExitCodes.Ok, r.Code);
        using var doc = System.Text.Json.JsonDocument.Parse(r.Out);
        Assert.True(doc.RootElement.GetProperty("passed").GetBoolean());
        Assert.Equal(12, doc.RootElement.GetProperty("results").GetArrayLength());
    }

    [Fact]
    public void NamePicksATensorOfASafetensorsFileToHoldAgainstAnNpyFile()
    {
        var e = new TensorSet<double>("e");
        e.Set("y", DenseTensor<double>.FromDoubles([1, 2, 3], 3));
        e.Set("x.grad", DenseTensor<double>.FromDoubles([4, 5], 2));
        string ep = Path.Combine(_temp, "e.safetensors"), np = Path.Combine(_temp, "mine.npy");
        SafeTensors.Write(ep, e);
        Npy.Write(np, DenseTensor<double>.FromDoubles([4, 5], 2));
        Assert.Equal(ExitCodes.Ok, Run("compare", ep, np, "--name", "x.grad").Code);
        Assert.Equal(ExitCodes.BadInput, Run("compare", ep, np, "--name", "nope").Code);
        Assert.Equal(ExitCodes.BadInput, Run("compare", _temp, np).Code);
    }

    /// <summary>
    /// The contract's exit 3: an error that is not bad input (a bug) is reported as internal, with its exception on
    /// stderr, and is not confused with bad input (2) — and bad input is not reported as a bug.
    /// </summary>
    [Fact]
    public void InternalErrorsExitWithThreeAndBadInputWithTwo()
    {
        var err = new StringWriter();
        var io = new Attention.Cli.Commands.CliIO(new StringWriter(), err);
        Assert.Equal(Attention.Cli.Commands.ExitCodes.InternalError, io.Guard(() => throw new IndexOutOfRangeException("a kernel bug")));
        Assert.Contains("internal error", err.ToString());
        Assert.Contains("IndexOutOfRangeException", err.ToString());
        Assert.Equal(Attention.Cli.Commands.ExitCodes.InternalError, io.Guard(() => throw new InvalidOperationException("a state bug")));
        Assert.Equal(Attention.Cli.Commands.ExitCodes.InternalError, io.Guard(() => throw new NullReferenceException()));
        var bad = new StringWriter();
        var io2 = new Attention.Cli.Commands.CliIO(new StringWriter(), bad);
        Assert.Equal(Attention.Cli.Commands.ExitCodes.BadInput, io2.Guard(() => throw new InvalidDataException("x.npy: truncated")));
        Assert.DoesNotContain("internal error", bad.ToString());
        Assert.Equal(Attention.Cli.Commands.ExitCodes.Ok, io2.Guard(() => Attention.Cli.Commands.ExitCodes.Ok));
    }

    /// <summary>
    /// A bad --threads is refused once, when the command line is parsed (issue 31: verify printed the error once per
    /// case), with exit 2 and nothing run; on every command that takes it.
    /// </summary>
    [Fact]
    public void BadThreadCountIsRefusedOnceBeforeAnythingRuns()
    {
        string pack = Path.Combine(AppContext.BaseDirectory, "testdata", "libtorch-2.10");
        var (code, stdout, err) = CliHarness.Run("verify", pack, "--threads", "0");
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Equal(1, err.Split('\n').Count(l => l.Contains("--threads must be at least 1, got 0.", StringComparison.Ordinal)));
        Assert.DoesNotContain("PASS", stdout);
        foreach (var args in new[] { new[] { "bench", "se", "--threads", "-2" }, ["run", pack, "--threads", "0"] })
        {
            var r = CliHarness.Run(args);
            Assert.Equal(ExitCodes.BadInput, r.Code);
            Assert.Contains("--threads must be at least 1", r.Err);
        }
    }

    /// <summary>Messages name the option and say what is wrong (issue 31): --dtype float16, export --onnx ''.</summary>
    [Fact]
    public void BadOptionValuesAreNamed()
    {
        string pack = Path.Combine(AppContext.BaseDirectory, "testdata", "libtorch-2.10");
        var (code, _, err) = CliHarness.Run("run", Path.Combine(pack, "ca_c24_eval"), "--dtype", "float16");
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Contains("--dtype must be float64 or float32, got 'float16'.", err);
        (code, _, err) = CliHarness.Run("export", Path.Combine(pack, "ca_c24_eval"), "--onnx", "");
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Contains("--onnx needs a folder", err);
        Assert.DoesNotContain("(Parameter", err);
    }
}
