using System.Text.RegularExpressions;
using System.Xml;
using Attention.Cli.Commands;
using Attention.Reference.Tests.Docs;

namespace Attention.Reference.Tests.Cli;

public sealed partial class TraceTests : IDisposable
{
    private readonly string _temp = Directory.CreateTempSubdirectory("attention-trace-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    private static (int Code, string Out, string Err) Run(params string[] args) => CliHarness.Run(args);

    public static TheoryData<string> Cases() => new(GoldenPack.CaseNames);

    [Theory]
    [MemberData(nameof(Cases))]
    public void TraceFollowsTheDocsNumbering(string name)
    {
        var (code, output, err) = Run("trace", GoldenPack.CasePath(name), "--show", "2");
        Assert.True(code == ExitCodes.Ok, err);
        var labels = StepRegex().Matches(output).Select(m => (Label: m.Groups[1].Value, Phase: m.Groups[2].Value)).ToList();
        Assert.NotEmpty(labels);
        Assert.Contains(labels, l => l.Phase == "forward");
        Assert.Contains(labels, l => l.Phase == "backward");
        var defined = DerivationLabelTests.DocLabels();
        Assert.All(labels, l => Assert.True(defined.Contains(l.Label), $"trace step ({l.Label}) is not in docs/derivations"));
        // Within each phase the equation numbers never go back (the derivation's order).
        foreach (var phase in new[] { "forward", "backward" })
        {
            var numbers = labels.Where(l => l.Phase == phase).Select(l => double.Parse(Regex.Match(l.Label, @"\d+").Value)).ToList();
            for (int i = 1; i < numbers.Count; i++)
                Assert.True(numbers[i] >= numbers[i - 1], $"{name}: {phase} step {i + 1} (eq {numbers[i]}) comes after eq {numbers[i - 1]}\n{output}");
        }
    }

    [Theory]
    [InlineData("se_c32_r8_bias", "se_channel_weights.svg")]
    [InlineData("ca_c12_train", "ca_attention_map.svg")]
    [InlineData("gct_l2_c9", "gct_gate.svg")]
    public void SvgPicturesAreWellFormed(string name, string file)
    {
        var (code, _, err) = Run("trace", GoldenPack.CasePath(name), "--steps", "forward", "--svg", _temp);
        Assert.True(code == ExitCodes.Ok, err);
        var doc = new XmlDocument();
        doc.Load(Path.Combine(_temp, file));
        Assert.Equal("svg", doc.DocumentElement!.Name);
        Assert.True(doc.GetElementsByTagName("rect").Count > 10);
    }

    [Fact]
    public void StepsFilterAndBadArguments()
    {
        var (_, forward, _) = Run("trace", GoldenPack.CasePath("gct_l1_c7"), "--steps", "forward");
        Assert.DoesNotContain("backward", forward.Split('\n').Skip(2).Aggregate("", (a, b) => a + b));
        Assert.Equal(ExitCodes.BadInput, Run("trace", GoldenPack.CasePath("gct_l1_c7"), "--steps", "sideways").Code);
        string file = Path.Combine(_temp, "a-file");
        File.WriteAllText(file, "");
        Assert.Equal(ExitCodes.BadInput, Run("trace", GoldenPack.CasePath("gct_l1_c7"), "--svg", file).Code);
        Assert.Equal(ExitCodes.BadInput, Run("trace", GoldenPack.CasePath("gct_l1_c7"), "--show", "-1").Code);
    }

    [GeneratedRegex(@"^\s*\d+\s+\(([a-z]+\.\d+[a-z]?)\)\s+(forward|backward)", RegexOptions.Multiline)]
    private static partial Regex StepRegex();
}
