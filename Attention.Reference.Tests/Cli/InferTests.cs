using System.Text.Json;
using Attention.Cli.Commands;
using Attention.Reference.Imaging;
using Attention.Reference.IO;
using Attention.Reference.Models;

namespace Attention.Reference.Tests.Cli;

/// <summary><c>infer</c> end to end: random weights saved by the project, the committed PNG and JPEG, top-k classes.</summary>
public sealed class InferTests : IDisposable
{
    private readonly string _temp = Directory.CreateTempSubdirectory("attention-infer-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    private static string Image(string name) => Path.Combine(AppContext.BaseDirectory, "testdata", "images", name);

    private string Weights(string model, int seed)
    {
        var net = ModelZoo.Create<double>(model);
        string path = Path.Combine(_temp, model + ".safetensors");
        SafeTensors.Write(path, RandomWeights.StateDict(net, seed));
        return path;
    }

    [Fact]
    public void BenchNetExplainNamesThePathAndEveryConvolutionsAlgorithm()
    {
        var (code, stdout, err) = CliHarness.Run(["bench", "net", "mobilenet_v3_small", "--explain", "--size", "32", "--threads", "1"]);
        Assert.True(code == ExitCodes.Ok, stdout + err);
        Assert.Contains("vector path Vector", stdout);
        Assert.Contains(" forward ", stdout);
        Assert.Contains(" weight gradient ", stdout);
        Assert.Contains("depthwise", stdout);
        Assert.DoesNotContain(" ms ", stdout); // explains; does not time
        var (code2, _, err2) = CliHarness.Run(["bench", "conv", "--explain"]);
        Assert.Equal(ExitCodes.BadInput, code2);
        Assert.Contains("--explain is for 'bench net MODEL'", err2);
    }

    [Fact]
    public void BenchNetProfileListsEveryKindOfStepWithItsTime()
    {
        var (code, stdout, err) = CliHarness.Run(["bench", "net", "mobilenet_v3_small", "--profile", "--size", "32", "--threads", "1",
            "--min-seconds", "0.05"]);
        Assert.True(code == ExitCodes.Ok, stdout + err);
        Assert.Contains("float32 plan", stdout);
        Assert.Contains("conv 16->16 3x3/2 g16 at 16x16 +act", stdout); // the depthwise stem block, fused with its ReLU
        Assert.Contains("SqueezeExcitation [1, 16, 8, 8]", stdout); // a layer run as it is
        Assert.Contains("residual sum", stdout); // a block's own work
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(2).ToList();
        Assert.NotEmpty(lines);
        var ms = lines.Select(l => double.Parse(l.Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.All(ms, m => Assert.True(m >= 0));
        Assert.Equal(ms.OrderByDescending(m => m), ms); // the slowest first
        var (code2, _, err2) = CliHarness.Run(["bench", "conv", "--profile"]);
        Assert.Equal(ExitCodes.BadInput, code2);
        Assert.Contains("--profile is for 'bench net MODEL'", err2);
    }

    [SkippableFact]
    public void DevicesAndEndlessFilesAreRefusedByNameNotReadWithoutEnd()
    {
        Skip.IfNot(File.Exists("/dev/zero"), "no /dev/zero on this system");
        string png = Path.Combine(AppContext.BaseDirectory, "testdata", "images", "sample_97x73.png");
        string weights = Weights("resnet50", 1);
        string Link(string name)
        {
            string link = Path.Combine(_temp, name);
            File.CreateSymbolicLink(link, "/dev/zero");
            return link;
        }
        foreach (var (args, what) in new (string[], string)[]
        {
            (["onnx", "run", "/dev/zero", "--input", "x=/dev/zero"], "ONNX model"),
            (["infer", "resnet50", "/dev/zero", "--weights", weights], "image"),
            (["infer", "resnet50", png, "--weights", weights, "--labels", "/dev/zero"], "labels file"),
            (["compare", Link("zero.safetensors"), weights], "safetensors file"),
            (["compare", Link("zero.npy"), weights], ".npy file"),
        })
        {
            var (code, stdout, err) = CliHarness.Run(args);
            Assert.True(code == ExitCodes.BadInput, $"{string.Join(' ', args)}: exit {code}\n{stdout}{err}");
            Assert.Contains(": not a regular file", err);
            Assert.True(err.Contains("/dev/zero") || err.Contains("zero."), err);
            Assert.Contains(what, err);
        }
    }

    [Theory]
    [InlineData("infer")]
    [InlineData("bench")]
    public void AModuleOrUnknownNameIsRefusedAsAModel(string command)
    {
        // "se" is a zoo entry (a case module), not a network: infer and bench net name the networks instead.
        foreach (string name in new[] { "se", "nope" })
        {
            string[] args = command == "infer"
                ? ["infer", name, "--weights", Path.Combine(_temp, "w.safetensors"), Image("sample_97x73.png")]
                : ["bench", "net", name, "--min-seconds", "0.01"];
            var (code, stdout, err) = CliHarness.Run(args);
            Assert.True(code == ExitCodes.BadInput, stdout + err);
            Assert.Contains($"unknown model '{name}'; known models: ", err);
            Assert.Contains("seresnet50", err);
            Assert.DoesNotContain("conv2d", err);
        }
    }

    [Fact]
    public void InferWithAndWithoutWinogradAgrees()
    {
        // resnet50's 3x3 layers at 56, 28 and 14 run Winograd by default; --no-winograd runs the direct kernel.
        string weights = Weights("resnet50", 7);
        var results = new List<(int Class, double P)>();
        foreach (var extra in new[] { Array.Empty<string>(), ["--no-winograd"] })
        {
            var (code, stdout, err) = CliHarness.Run(["infer", "resnet50", "--weights", weights, Image("sample_97x73.png"), "--top", "1",
                "--json", .. extra]);
            Assert.True(code == ExitCodes.Ok, stdout + err);
            using var doc = JsonDocument.Parse(stdout.Trim());
            var top = doc.RootElement.GetProperty("top")[0];
            results.Add((top.GetProperty("class").GetInt32(), top.GetProperty("probability").GetDouble()));
        }
        Assert.Equal(results[0].Class, results[1].Class);
        Assert.True(Math.Abs(results[0].P - results[1].P) <= 1e-4, $"{results[0].P} vs {results[1].P}");
        Assert.NotEqual(results[0].P, results[1].P); // the flag reached the plan: the two roundings differ
    }

    [Fact]
    public void InferClassifiesPngAndJpegAndSavesTheExactInput()
    {
        string weights = Weights("mobilenet_v3_small", 3);
        string npy = Path.Combine(_temp, "x.npy");
        var (code, stdout, err) = CliHarness.Run("infer", "mobilenet_v3_small", "--weights", weights, Image("sample_97x73.png"),
            Image("sample_97x73.jpg"), "--top", "3", "--json", "--save-input", npy);
        Assert.True(code == ExitCodes.Ok, stdout + err);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        var labels = InferCommand.ImageNetLabels();
        Assert.Equal(1000, labels.Length);
        Assert.Equal("tench", labels[0]);
        var tops = new List<int>();
        foreach (var line in lines)
        {
            using var doc = JsonDocument.Parse(line);
            var top = doc.RootElement.GetProperty("top").EnumerateArray().ToList();
            Assert.Equal(3, top.Count);
            var p = top.Select(t => t.GetProperty("probability").GetDouble()).ToList();
            Assert.True(p[0] >= p[1] && p[1] >= p[2] && p[0] <= 1 && p[2] > 0);
            Assert.Equal(labels[top[0].GetProperty("class").GetInt32()], top[0].GetProperty("label").GetString());
            tops.Add(top[0].GetProperty("class").GetInt32());
        }
        // The saved input is exactly the recipe's tensor for both images.
        var saved = Npy.Read(npy);
        Assert.Equal([2, 3, 224, 224], saved.Shape);
        var recipe = ModelZoo.GetNetwork("mobilenet_v3_small").Recipe!;
        var png = recipe.Apply(RgbImage.Load(Image("sample_97x73.png")));
        for (int i = 0; i < png.Length; i++) Assert.Equal(png.Data[i], (float)saved.Values[i]);
        // The float64 oracle agrees on the top-1 class of each image.
        (code, stdout, err) = CliHarness.Run("infer", "mobilenet_v3_small", "--weights", weights, Image("sample_97x73.png"),
            Image("sample_97x73.jpg"), "--top", "1", "--json", "--dtype", "float64");
        Assert.True(code == ExitCodes.Ok, stdout + err);
        var tops64 = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("top")[0].GetProperty("class").GetInt32()).ToList();
        Assert.Equal(tops, tops64);
    }

    [Fact]
    public void BadImagesAndWeightsExitTwo()
    {
        string weights = Weights("mobilenet_v3_small", 4);
        string text = Path.Combine(_temp, "notes.png");
        File.WriteAllText(text, "not an image");
        var (code, _, err) = CliHarness.Run("infer", "mobilenet_v3_small", "--weights", weights, text);
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Contains("notes.png", err);
        (code, _, err) = CliHarness.Run("infer", "mobilenet_v3_large", "--weights", weights, Image("sample_97x73.png"));
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Contains("mobilenet_v3_small.safetensors", err);
    }

    /// <summary>
    /// Sizes before allocation (issue 31): `infer --size 8000` ran out of memory (exit 3); the forward's module outputs
    /// are planned first and held to --max-memory as `run` does, naming both sizes, before any image or weight is read.
    /// </summary>
    [Fact]
    public void OversizedInputIsRefusedBeforeAnythingIsRead()
    {
        var (code, _, err) = CliHarness.Run("infer", "mobilenet_v3_small", "--weights", "no-such-weights.safetensors", "no-such.png",
            "--size", "8000", "--max-memory", "4G");
        Assert.True(code == ExitCodes.BadInput, err);
        Assert.Contains("--size 8000", err);
        Assert.Contains("--max-memory", err);
        (code, _, err) = CliHarness.Run("infer", "mobilenet_v3_small", "--weights", "no-such-weights.safetensors", "no-such.png",
            "--max-memory", "1M");
        Assert.True(code == ExitCodes.BadInput, err);
        Assert.Contains("over the 1.0 MB limit", err);
        (code, _, err) = CliHarness.Run("infer", "mobilenet_v3_small", "--weights", "w.safetensors", "no-such.png", "--size", "0");
        Assert.True(code == ExitCodes.BadInput, err);
    }
}
