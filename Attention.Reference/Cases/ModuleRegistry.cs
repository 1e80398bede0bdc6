namespace Attention.Reference.Cases;

/// <summary>The modules a case may name, by their <c>"module"</c> value.</summary>
public static class ModuleRegistry
{
    private static readonly Dictionary<string, CaseModule> Modules = new(StringComparer.Ordinal);

    static ModuleRegistry()
    {
        // Each module registers itself here, one line each.
        Add(new Conv2dCaseModule());
        Add(new SeCaseModule());
        Add(new SeResNetBlockCaseModule());
        Add(new CaCaseModule());
        Add(new GctCaseModule());
        Add(new TorchvisionSeCaseModule());
        Add(new TimmSeCaseModule());
        Add(new CoordAttCaseModule());
        foreach (var model in Models.ModelZoo.All) Add(new NetworkCaseModule(model));
    }

    private static void Add(CaseModule module) => Modules.Add(module.Name, module);

    /// <summary>Every registered module, ordered by name.</summary>
    public static IEnumerable<CaseModule> All => Modules.Values.OrderBy(m => m.Name, StringComparer.Ordinal);

    /// <summary>The module called <paramref name="name"/>.</summary>
    /// <exception cref="CaseFormatException">No such module.</exception>
    public static CaseModule Get(string name, string source = "case.json") =>
        Modules.TryGetValue(name, out var m)
            ? m
            : throw new CaseFormatException(
                $"{source}: unknown module '{name}'; known modules: {(Modules.Count == 0 ? "none" : string.Join(", ", All.Select(x => x.Name)))}.");
}
