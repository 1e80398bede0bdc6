using System.Text.RegularExpressions;

namespace Attention.Reference.Tests.Docs;

/// <summary>
/// docs/architecture.md promises that each folder of the library depends only on the folders above it in its table:
/// no cycles, kernels never reaching up into layers. This reads the table and every source file's namespace
/// references (<c>using</c> directives and fully qualified names) and holds the code to it.
/// </summary>
public partial class ArchitectureTests
{
    [Fact]
    public void EachFolderUsesOnlyTheFoldersAboveItInTheArchitectureTable()
    {
        string root = DerivationLabelTests.RepoRoot();
        var order = TableRow().Matches(File.ReadAllText(Path.Combine(root, "docs", "architecture.md")))
            .Select(m => m.Groups[1].Value).ToList();
        string library = Path.Combine(root, "Attention.Reference");
        var folders = Directory.GetDirectories(library).Select(Path.GetFileName).Where(f => f is not ("bin" or "obj")).ToList();
        // Every folder of the library has its row, and no row names a folder that is not there.
        Assert.Equal(folders.Order(StringComparer.Ordinal), order.Order(StringComparer.Ordinal));

        var violations = new List<string>();
        foreach (string folder in order)
        {
            int rank = order.IndexOf(folder);
            foreach (string file in Directory.GetFiles(Path.Combine(library, folder), "*.cs", SearchOption.AllDirectories))
                foreach (Match m in Reference().Matches(File.ReadAllText(file)))
                {
                    string used = m.Groups[1].Value;
                    if (used != folder && order.IndexOf(used) > rank)
                        violations.Add($"{Path.GetRelativePath(library, file)} uses {used}/, which is below {folder}/ in docs/architecture.md");
                }
        }
        Assert.True(violations.Count == 0, string.Join("\n", violations.Distinct()));
    }

    [Fact]
    public void NoLayerIsAKernelCallbackAndNoLayerCarriesPlanHooks()
    {
        // Kernels call their epilogues through IConvEpilogue: an operator object, never a layer (docs/architecture.md).
        // The inference plan is a pass over the tree (Models/PlanCompiler): the layer base class has no fusion hooks.
        var assembly = typeof(Attention.Reference.Layers.Layer<>).Assembly;
        var layers = assembly.GetTypes().Where(t => IsLayer(t)).ToList();
        Assert.NotEmpty(layers);
        foreach (var t in layers)
            Assert.DoesNotContain(t.GetInterfaces(), i => i.IsGenericType
                && i.GetGenericTypeDefinition() == typeof(Attention.Reference.Kernels.Conv.IConvEpilogue<>));
        var members = typeof(Attention.Reference.Layers.Layer<>)
            .GetMembers(System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Public)
            .Select(m => m.Name).ToHashSet();
        foreach (string hook in new[] { "FuseForInference", "InputOwned", "OutputIsOwnBuffer", "PlanBuffer", "MarkUse" })
            Assert.DoesNotContain(hook, members);

        static bool IsLayer(Type? t)
        {
            for (; t is not null; t = t.BaseType)
                if (t.IsGenericType && t.GetGenericTypeDefinition() == typeof(Attention.Reference.Layers.Layer<>)) return true;
            return false;
        }
    }

    [GeneratedRegex(@"^\| `([A-Za-z]+)/` \|", RegexOptions.Multiline)]
    private static partial Regex TableRow();

    [GeneratedRegex(@"Attention\.Reference\.([A-Za-z]+)\b(?!\.dll)")]
    private static partial Regex Reference();
}
