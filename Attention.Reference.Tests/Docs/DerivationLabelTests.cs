using System.Text.RegularExpressions;

namespace Attention.Reference.Tests.Docs;

/// <summary>Keeps the code and docs/derivations honest: every equation cited in code exists in the docs.</summary>
public partial class DerivationLabelTests
{
    internal static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Attention.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Cannot find the repository root (Attention.sln) above " + AppContext.BaseDirectory);
    }

    /// <summary>Labels defined in the docs: \tag{se.3}.</summary>
    internal static HashSet<string> DocLabels() =>
        Directory.GetFiles(Path.Combine(RepoRoot(), "docs", "derivations"), "*.md")
            .SelectMany(f => TagRegex().Matches(File.ReadAllText(f)).Select(m => m.Groups[1].Value))
            .ToHashSet(StringComparer.Ordinal);

    /// <summary>Labels cited in the library's code: "Eq. (se.3)", "Eqs. (se.3)–(se.5)", and trace steps ("se.3", "z").</summary>
    private static IEnumerable<(string File, string Label)> CodeLabels()
    {
        foreach (var file in Directory.GetFiles(Path.Combine(RepoRoot(), "Attention.Reference"), "*.cs", SearchOption.AllDirectories))
        {
            if (file.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}") || file.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}")) continue;
            string text = File.ReadAllText(file);
            foreach (Match m in CitationRegex().Matches(text)) yield return (Path.GetFileName(file), m.Groups[1].Value);
            foreach (Match m in TraceRegex().Matches(text))
                foreach (Match l in LabelRegex().Matches(m.Value)) yield return (Path.GetFileName(file), l.Value);
        }
    }

    [Fact]
    public void EveryDerivationFileExists()
    {
        foreach (var name in new[] { "index.md", "conv2d.md", "pooling-and-activations.md", "batchnorm.md", "se.md", "ca.md", "gct.md" })
            Assert.True(File.Exists(Path.Combine(RepoRoot(), "docs", "derivations", name)), $"docs/derivations/{name} is missing");
    }

    [Fact]
    public void EveryEquationCitedInCodeExistsInTheDocs()
    {
        var defined = DocLabels();
        var cited = CodeLabels().ToList();
        Assert.True(cited.Count > 50, $"only {cited.Count} citations found: the scan is broken");
        var missing = cited.Where(c => !defined.Contains(c.Label)).Select(c => $"{c.File}: ({c.Label})").Distinct().ToList();
        Assert.True(missing.Count == 0, "cited in code but not defined by a \\tag{} in docs/derivations:\n" + string.Join("\n", missing));
    }

    [Fact]
    public void NoLabelIsDefinedTwice()
    {
        var all = Directory.GetFiles(Path.Combine(RepoRoot(), "docs", "derivations"), "*.md")
            .SelectMany(f => TagRegex().Matches(File.ReadAllText(f)).Select(m => (File: Path.GetFileName(f), Label: m.Groups[1].Value)))
            .GroupBy(x => x.Label).Where(g => g.Count() > 1).Select(g => $"{g.Key} in {string.Join(", ", g.Select(x => x.File))}").ToList();
        Assert.True(all.Count == 0, "labels defined twice:\n" + string.Join("\n", all));
    }

    [GeneratedRegex(@"\\tag\{([a-z]+\.\d+[a-z]?)\}")]
    private static partial Regex TagRegex();

    [GeneratedRegex(@"Eqs?\.\s*\(([a-z]+\.\d+[a-z]?)\)")]
    private static partial Regex CitationRegex();

    [GeneratedRegex(@"(?:Eqs?\.\s*\([a-z]+\.\d+[a-z]?\)\s*(?:–|-|,|and|to)\s*\([a-z]+\.\d+[a-z]?\))|(?:\.(?:Forward|Backward)\(\s*[^,]*?""[a-z]+\.\d+[a-z]?""[^;]*;)")]
    private static partial Regex TraceRegex();

    [GeneratedRegex(@"(?<=[(""])[a-z]+\.\d+[a-z]?(?=[)""])")]
    private static partial Regex LabelRegex();
}
