using System.Xml.Linq;

namespace Attention.Reference.Tests.Cli;

/// <summary>
/// The native-AOT publish (README, "Edge deployment") stays warning-free because every build runs the trimming and
/// AOT analyzers with warnings as errors; these tests keep those switches from being removed.
/// (The publish itself needs a native linker and a few minutes, so CI builds with the analyzers instead.)
/// </summary>
public sealed class AotReadinessTests
{
    private static string Repo
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Attention.sln"))) dir = dir.Parent;
            return dir?.FullName ?? throw new DirectoryNotFoundException("Attention.sln not found above the test binaries");
        }
    }

    private static string? Property(string project, string name) =>
        XDocument.Load(Path.Combine(Repo, project)).Descendants(name).Select(e => e.Value).FirstOrDefault();

    [Fact]
    public void EveryBuildRunsTheTrimmingAndAotAnalyzersAsErrors()
    {
        Assert.Equal("true", Property("Directory.Build.props", "TreatWarningsAsErrors"));
        Assert.Equal("true", Property("Attention.Reference/Attention.Reference.csproj", "IsAotCompatible"));
        foreach (var p in new[] { "EnableTrimAnalyzer", "EnableAotAnalyzer", "EnableSingleFileAnalyzer" })
            Assert.Equal("true", Property("Attention.Cli/Attention.Cli.csproj", p));
    }

    [Fact]
    public void AnX64NativePublishTargetsAnInstructionSetWithFma()
    {
        // Without it NativeAOT targets x86-64-v2, which has no FMA: the kernels' fused multiply-adds run in software,
        // 100-200x slower (README, "Edge deployment").
        var set = XDocument.Load(Path.Combine(Repo, "Attention.Cli/Attention.Cli.csproj")).Descendants("IlcInstructionSet").Single();
        Assert.Equal("native", set.Value);
        Assert.Contains("-x64", set.Attribute("Condition")?.Value ?? "", StringComparison.Ordinal);
    }
}
