using Attention.Reference.IO;
using Attention.Reference.Models;

namespace Attention.Reference.Cases;

/// <summary>
/// A case folder: <c>case.json</c>, <c>inputs.safetensors</c> (<c>x</c>, optional <c>y.grad</c>),
/// <c>params.safetensors</c> (state_dict names), and optionally <c>expected.safetensors</c>.
/// </summary>
public sealed class CaseFolder
{
    /// <summary>The config file's name.</summary>
    public const string ConfigFile = "case.json";
    /// <summary>The inputs file's name.</summary>
    public const string InputsFile = "inputs.safetensors";
    /// <summary>The parameters file's name.</summary>
    public const string ParamsFile = "params.safetensors";
    /// <summary>The expected outputs file's name.</summary>
    public const string ExpectedFile = "expected.safetensors";

    /// <summary>The expected module dump of a network case (every module's output, <c>"order"</c> metadata).</summary>
    public const string ExpectedDumpFile = "expected_dump.safetensors";

    /// <summary>The folder.</summary>
    public string Path { get; }

    /// <summary>The folder's name.</summary>
    public string Name => System.IO.Path.GetFileName(System.IO.Path.TrimEndingDirectorySeparator(Path));

    /// <summary>The parsed case.json.</summary>
    public CaseConfig Config { get; }

    /// <summary>The zoo entry the case names (its <c>"module"</c>).</summary>
    public ModelFactory Module { get; }

    private CaseFolder(string path, CaseConfig config, ModelFactory module)
    {
        Path = path;
        Config = config;
        Module = module;
    }

    /// <summary>Opens a case folder and resolves its module.</summary>
    /// <exception cref="DirectoryNotFoundException">No such folder.</exception>
    /// <exception cref="CaseFormatException">No case.json, malformed JSON, or unknown module.</exception>
    public static CaseFolder Open(string path)
    {
        if (!Directory.Exists(path)) throw new DirectoryNotFoundException($"Case folder '{path}' does not exist.");
        string config = System.IO.Path.Combine(path, ConfigFile);
        if (!File.Exists(config)) throw new CaseFormatException($"'{path}' is not a case folder: it has no {ConfigFile}.");
        var cfg = CaseConfig.Load(config);
        return new CaseFolder(path, cfg, ModelZoo.Get(cfg.Module, config));
    }

    /// <summary>True when <paramref name="path"/> holds a case.json.</summary>
    public static bool IsCase(string path) => File.Exists(System.IO.Path.Combine(path, ConfigFile));

    /// <summary>The sub-folders of a pack that are not cases (no case.json), sorted by name: what verify skips and says so.</summary>
    public static IReadOnlyList<string> SkippedFolders(string pack) =>
        !Directory.Exists(pack) || IsCase(pack) ? []
            : Directory.GetDirectories(pack).Where(d => !IsCase(d)).Select(d => System.IO.Path.GetFileName(d))
                .OrderBy(n => n, StringComparer.Ordinal).ToList();

    /// <summary>The case folders of a pack (its sub-folders that hold a case.json), sorted by name; or the folder itself if it is a case.</summary>
    public static IReadOnlyList<string> ListPack(string pack)
    {
        if (!Directory.Exists(pack)) throw new DirectoryNotFoundException($"Pack folder '{pack}' does not exist.");
        if (IsCase(pack)) return [pack];
        var cases = Directory.GetDirectories(pack).Where(IsCase).OrderBy(p => p, StringComparer.Ordinal).ToList();
        if (cases.Count == 0) throw new CaseFormatException($"'{pack}' holds no case folders (sub-folders with a {ConfigFile}).");
        return cases;
    }

    /// <summary>
    /// Reads the inputs as <typeparamref name="T"/>: <c>inputs.safetensors</c>, or <c>inputs.pth</c> (a <c>torch.save</c>
    /// of a dict of tensors, through the restricted unpickler) or <c>inputs.npz</c> (<c>numpy.savez</c>) for environments
    /// that cannot write safetensors.
    /// </summary>
    public TensorSet<T> ReadInputs<T>() where T : IFloatingPointIeee754<T>
    {
        var (tensors, file) = ReadStored("inputs", required: true);
        return tensors!.ToTensorSet<T>($"{Name}/{file}");
    }

    /// <summary>The forms a case's tensor files may take, by extension: safetensors, torch.save, numpy.savez.</summary>
    private static readonly string[] TensorForms = [".safetensors", ".pth", ".npz"];

    /// <summary>The tensors of <c>stem</c>.safetensors, .pth or .npz (exactly one may exist), and the file's name.</summary>
    private (List<StoredTensor>? Tensors, string File) ReadStored(string stem, bool required)
    {
        var present = TensorForms.Select(e => stem + e)
            .Where(f => File.Exists(System.IO.Path.Combine(Path, f)) || Directory.Exists(System.IO.Path.Combine(Path, f))).ToList();
        if (present.Count > 1) throw new CaseFormatException($"Case '{Path}' has both {string.Join(" and ", present)}; keep one.");
        if (present.Count == 0)
            return required ? throw new CaseFormatException($"Case '{Path}' has no {stem}.safetensors (or {stem}.pth, {stem}.npz).")
                : (null, stem + ".safetensors");
        string full = System.IO.Path.Combine(Path, present[0]);
        if (Directory.Exists(full)) throw new CaseFormatException($"Case '{Path}': '{full}' is a directory, not a file.");
        return (System.IO.Path.GetExtension(full) switch
        {
            ".safetensors" => SafeTensors.Read(full),
            ".pth" => Pth.Read(full),
            _ => Npy.ReadNpz(full),
        }, present[0]);
    }

    /// <summary>The state_dict file of a case when it is a .pth (<c>torch.save</c>) file.</summary>
    public const string ParamsPthFile = "params.pth";

    /// <summary>
    /// Reads the parameters as <typeparamref name="T"/> from <c>params.safetensors</c> or <c>params.pth</c> (never
    /// both; an empty set when neither exists). BatchNorm's integer <c>num_batches_tracked</c> counters are
    /// accepted and dropped; any other integer tensor is refused.
    /// </summary>
    public TensorSet<T> ReadParameters<T>() where T : IFloatingPointIeee754<T>
    {
        var (stored, file) = ReadStored("params", required: false);
        if (stored is null) return new TensorSet<T>($"{Name} (which has no {ParamsFile} or {ParamsPthFile})");
        var kept = new List<StoredTensor>();
        foreach (var t in stored)
        {
            if (t.IsInteger && (t.Name == "num_batches_tracked" || t.Name.EndsWith(".num_batches_tracked", StringComparison.Ordinal)))
                continue;
            kept.Add(t);
        }
        return kept.ToTensorSet<T>($"{Name}/{file}");
    }

    /// <summary>Reads <c>expected.safetensors</c> (or <c>.pth</c>, <c>.npz</c>) as stored tensors, or null when the case has none.</summary>
    public List<StoredTensor>? ReadExpected() => ReadStored("expected", required: false).Tensors;

    /// <summary>Reads <c>expected_dump.safetensors</c> and its <c>"order"</c>, or null when the case has none.</summary>
    public (List<StoredTensor> Tensors, string? Order)? ReadExpectedDump()
    {
        string file = System.IO.Path.Combine(Path, ExpectedDumpFile);
        if (!File.Exists(file)) return null;
        var tensors = SafeTensors.Read(file, out var metadata);
        return (tensors, metadata.GetValueOrDefault(DumpComparer.OrderKey));
    }

    /// <summary>The files of this case that commands read (those that exist, and the standard names): never outputs.</summary>
    public IEnumerable<string> KnownFiles =>
        new[] { ConfigFile, ExpectedDumpFile }.Concat(new[] { "inputs", "params", "expected" }.SelectMany(s => TensorForms.Select(e => s + e)))
            .Select(f => System.IO.Path.Combine(Path, f));

    /// <summary>True when the case names a whole network (a model of the model zoo), which can dump its modules.</summary>
    public bool IsNetwork => Module.IsNetwork;

    /// <summary>Runs the module on this case in precision <typeparamref name="T"/>.</summary>
    public TensorSet<T> Run<T>(RunOptions? options = null) where T : IFloatingPointIeee754<T> =>
        Module.Run(Config, ReadInputs<T>(), ReadParameters<T>(), options ?? RunOptions.Default);

    /// <summary>Writes a generated case (config, inputs, parameters, and the expected outputs) into <paramref name="folder"/>.</summary>
    public static void Write(string folder, GeneratedCase c, TensorSet<double> expected)
    {
        Directory.CreateDirectory(folder);
        AtomicFile.WriteText(System.IO.Path.Combine(folder, ConfigFile), c.Config.ToJson() + "\n");
        SafeTensors.Write(System.IO.Path.Combine(folder, InputsFile), c.Inputs);
        SafeTensors.Write(System.IO.Path.Combine(folder, ParamsFile), c.Parameters);
        SafeTensors.Write(System.IO.Path.Combine(folder, ExpectedFile), expected);
    }
}
